package trace

import (
	"encoding/binary"
	"hash/fnv"

	"golang.org/x/sys/unix"
)

// ConnKeys names the two directions of the connected stream socket fd
// the same way in both processes that hold its ends: w is the key of the
// bytes this end writes, r of those it reads (the other end's w). A TCP
// connection is named by its addresses; a unix one by the inode of the
// connecting socket (the accepting end asks the kernel for its peer's
// through sock_diag: a connecting unix socket has no address, and its
// peer has no inode until it is accepted). The accepting end of a unix
// connection is the one with an address (a connecting socket is never
// bound: ipc.Dial does not). ok is false for anything else (a datagram
// socket), or when the kernel does not say.
func ConnKeys(fd int) (w, r uint64, ok bool) {
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil || typ != unix.SOCK_STREAM {
		return 0, 0, false
	}
	local, err := unix.Getsockname(fd)
	if err != nil {
		return 0, 0, false
	}
	var me, peer []byte
	switch la := local.(type) {
	case *unix.SockaddrUnix:
		accepted := la.Name != "" && la.Name != "@" // x/sys names an unnamed socket "@"
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil {
			return 0, 0, false
		}
		client := st.Ino
		if accepted {
			p, ok := unixPeerInode(uint32(st.Ino))
			if !ok || p == 0 {
				return 0, 0, false
			}
			client = uint64(p)
		}
		id := binary.LittleEndian.AppendUint64([]byte("u"), client)
		me, peer = append(id, 'c'), append(id[:len(id):len(id)], 's')
		if accepted {
			me, peer = peer, me
		}
	default:
		remote, err := unix.Getpeername(fd)
		if err != nil {
			return 0, 0, false
		}
		if me, ok = inetAddr(local); !ok {
			return 0, 0, false
		}
		if peer, ok = inetAddr(remote); !ok {
			return 0, 0, false
		}
	}
	return connKey(me, peer), connKey(peer, me), true
}

func connKey(from, to []byte) uint64 {
	h := fnv.New64a()
	h.Write(from)
	h.Write([]byte{0})
	h.Write(to)
	k := h.Sum64()
	if k == 0 {
		k = 1
	}
	return k
}

func inetAddr(sa unix.Sockaddr) ([]byte, bool) {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return binary.BigEndian.AppendUint16(append([]byte("4"), a.Addr[:]...), uint16(a.Port)), true
	case *unix.SockaddrInet6:
		return binary.BigEndian.AppendUint16(append([]byte("6"), a.Addr[:]...), uint16(a.Port)), true
	}
	return nil, false
}

// unixPeerInode asks sock_diag (NETLINK_SOCK_DIAG, linux/unix_diag.h) for
// the inode of the peer of the unix socket with inode ino.
func unixPeerInode(ino uint32) (uint32, bool) {
	const (
		sockDiagByFamily = 20
		udiagShowPeer    = 4
		unixDiagPeer     = 2
	)
	s, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return 0, false
	}
	defer unix.Close(s)
	// nlmsghdr (16) + unix_diag_req (24)
	req := make([]byte, 40)
	le := binary.LittleEndian
	le.PutUint32(req[0:], 40)
	le.PutUint16(req[4:], sockDiagByFamily)
	le.PutUint16(req[6:], unix.NLM_F_REQUEST)
	le.PutUint32(req[8:], 1)
	req[16] = unix.AF_UNIX
	le.PutUint32(req[20:], 0xffffffff) // every state
	le.PutUint32(req[24:], ino)
	le.PutUint32(req[28:], udiagShowPeer)
	le.PutUint32(req[32:], 0xffffffff) // no cookie
	le.PutUint32(req[36:], 0xffffffff)
	if err := unix.Sendto(s, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, false
	}
	buf := make([]byte, 8192)
	n, _, err := unix.Recvfrom(s, buf, 0)
	if err != nil || n < 16+16 {
		return 0, false
	}
	buf = buf[:n]
	if le.Uint16(buf[4:]) != sockDiagByFamily {
		return 0, false
	}
	msgLen := int(le.Uint32(buf[0:]))
	if msgLen > n {
		msgLen = n
	}
	if le.Uint32(buf[16+4:]) != ino {
		return 0, false
	}
	for at := 16 + 16; at+4 <= msgLen; {
		l := int(le.Uint16(buf[at:]))
		typ := le.Uint16(buf[at+2:])
		if l < 4 || at+l > msgLen {
			break
		}
		if typ == unixDiagPeer && l >= 8 {
			return le.Uint32(buf[at+4:]), true
		}
		at += (l + 3) &^ 3
	}
	return 0, false
}
