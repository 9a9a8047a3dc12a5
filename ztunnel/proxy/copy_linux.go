//go:build linux

package proxy

import (
	"io"
	"net"
	"sync"
)

// copyBufSize is the size of the pooled buffers used while data flows.
const copyBufSize = 64 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// smallBufSize is the per-direction buffer a connection keeps while idle.
const smallBufSize = 2 << 10

// copyFromTCP copies src to dst keeping only a small buffer while src is
// idle: a read that fills it means more is pending, and a pooled 64 KiB
// buffer is borrowed until the burst ends. An idle connection thus costs
// 2 KiB per direction instead of io.Copy's 32 KiB.
func copyFromTCP(dst io.Writer, src *net.TCPConn) (int64, error) {
	small := make([]byte, smallBufSize)
	var total int64
	for {
		n, err := src.Read(small)
		if n > 0 {
			w, werr := dst.Write(small[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
			if w != n {
				return total, io.ErrShortWrite
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
		if n < len(small) {
			continue
		}
		bp := copyBufs.Get().(*[]byte)
		m, rerr, werr := drain(dst, src, *bp)
		copyBufs.Put(bp)
		total += m
		if werr != nil {
			return total, werr
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}

// drain reads and writes while reads fill the buffer (more is likely
// pending); it returns after a short read.
func drain(dst io.Writer, src io.Reader, buf []byte) (total int64, rerr, werr error) {
	for {
		n, err := src.Read(buf)
		if n > 0 {
			w, e := dst.Write(buf[:n])
			total += int64(w)
			if e != nil {
				return total, nil, e
			}
			if w != n {
				return total, nil, io.ErrShortWrite
			}
		}
		if err != nil {
			return total, err, nil
		}
		if n < len(buf) {
			return total, nil, nil
		}
	}
}
