package runtime

import "sync/atomic"

func loadU32(p *uint32) uint32 { return atomic.LoadUint32(p) }
func loadU64(p *uint64) uint64 { return atomic.LoadUint64(p) }
func loadI32(p *int32) int32   { return atomic.LoadInt32(p) }
