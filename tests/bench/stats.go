package main

import (
	"math"
	"sort"
)

// stats summarises the samples of one cell, in the row's unit.
type stats struct {
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Max     float64   `json:"max"`
	Q1      float64   `json:"q1"`
	Q3      float64   `json:"q3"`
	Samples []float64 `json:"samples"`
}

func summarise(samples []float64) stats {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	return stats{
		Median:  quantile(s, 0.5),
		Min:     s[0],
		Max:     s[len(s)-1],
		Q1:      quantile(s, 0.25),
		Q3:      quantile(s, 0.75),
		Samples: samples,
	}
}

// quantile of sorted samples, interpolating linearly between ranks.
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := math.Floor(pos)
	hi := math.Ceil(pos)
	return sorted[int(lo)] + (sorted[int(hi)]-sorted[int(lo)])*(pos-lo)
}

// spread is half the min–max range as a fraction of the median.
func (s stats) spread() float64 {
	if s.Median == 0 {
		return 0
	}
	return (s.Max - s.Min) / 2 / s.Median
}
