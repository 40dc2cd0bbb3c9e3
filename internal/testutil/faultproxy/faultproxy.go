// Package faultproxy is a loopback TCP proxy a test can cut or freeze.
// While down it closes every connection it holds and every one it
// accepts, as a dead server would; while frozen it keeps them open but
// passes nothing on, as a link that black-holes packets would (no reset,
// so only a timeout notices). Tests put it between Keygate and
// PostgreSQL.
package faultproxy

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	neturl "net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a target address.
type Proxy struct {
	addr   string
	target string
	mu     sync.Mutex
	down   bool
	frozen bool
	// dropNotify: PostgreSQL's NotificationResponse messages from the
	// server are not passed on (a pooler that loses LISTEN's messages
	// while the connection stays healthy).
	dropNotify bool
	thawed     *sync.Cond
	conns      map[net.Conn]struct{}
}

// Start listens on a loopback port and forwards to target (host:port)
// until the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("faultproxy: %v", err)
	}
	p := &Proxy{addr: ln.Addr().String(), target: target, conns: map[net.Conn]struct{}{}}
	p.thawed = sync.NewCond(&p.mu)
	var wg sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		p.SetDown(true)
		wg.Wait()
	})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.serve(c) })
		}
	})
	return p
}

// StartForURL starts a proxy to the host of a postgres:// URL and returns
// it with the URL rewritten to go through it. A keyword DSN (no URL) makes
// the test skip: there is no host to rewrite.
func StartForURL(t testing.TB, dbURL string) (*Proxy, *neturl.URL) {
	t.Helper()
	u, err := neturl.Parse(dbURL)
	if err != nil || u.Host == "" {
		t.Skipf("this test needs a postgres:// URL, not a keyword DSN")
	}
	target := u.Host
	if u.Port() == "" {
		target = net.JoinHostPort(u.Hostname(), "5432")
	}
	p := Start(t, target)
	u.Host = p.Addr()
	return p, u
}

// Addr is the proxy's host:port.
func (p *Proxy) Addr() string { return p.addr }

// SetDown cuts (true) or restores (false) the link. Cutting closes every
// connection the proxy holds; while down, new ones are closed at once.
func (p *Proxy) SetDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		p.frozen = false
		p.thawed.Broadcast()
		for c := range p.conns {
			_ = c.Close()
		}
	}
}

// SetFrozen stops (true) or resumes (false) passing bytes on, without
// closing anything: what arrives meanwhile is held and delivered after.
func (p *Proxy) SetFrozen(frozen bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.frozen = frozen
	if !frozen {
		p.thawed.Broadcast()
	}
}

// SetDropNotifications makes the proxy swallow (true) or pass on (false)
// PostgreSQL's asynchronous notifications on every connection it holds,
// leaving everything else alone. It assumes a plaintext PostgreSQL
// session (sslmode=disable), whose server messages are all typed.
func (p *Proxy) SetDropNotifications(drop bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropNotify = drop
}

func (p *Proxy) droppingNotifications() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropNotify
}

// waitThawed returns once the proxy is not frozen.
func (p *Proxy) waitThawed() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.frozen {
		p.thawed.Wait()
	}
}

func (p *Proxy) serve(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		_ = c.Close()
		return
	}
	if !p.track(c, up) {
		_ = c.Close()
		_ = up.Close()
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				p.waitThawed()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go p.serverToClient(c, up, done)
	<-done
	<-done
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.conns, up)
	p.mu.Unlock()
}

// serverToClient passes PostgreSQL's server messages on one at a time
// (type byte, 4-byte length including itself, body), so that
// notifications ('A') can be dropped.
func (p *Proxy) serverToClient(dst, src net.Conn, done chan<- struct{}) {
	defer func() {
		_ = dst.Close()
		_ = src.Close()
		done <- struct{}{}
	}()
	r := bufio.NewReaderSize(src, 32<<10)
	head := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, head); err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(head[1:])) - 4
		if n < 0 {
			return
		}
		msg := make([]byte, 5+n)
		copy(msg, head)
		if _, err := io.ReadFull(r, msg[5:]); err != nil {
			return
		}
		if head[0] == 'A' && p.droppingNotifications() {
			continue
		}
		p.waitThawed()
		if _, err := dst.Write(msg); err != nil {
			return
		}
	}
}

func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return false
	}
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
	return true
}
