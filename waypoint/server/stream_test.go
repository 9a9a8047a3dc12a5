package server

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"testing"
	"time"
)

// TestStreamingResponseFlushed checks that an event stream reaches the
// client as the backend writes it, not when the response ends, and that a
// plain response of known length arrives whole with its length.
func TestStreamingResponseFlushed(t *testing.T) {
	m := newMesh(t)
	for _, h2 := range []bool{false, true} {
		c := m.httpClient(h2)
		t.Run(map[bool]string{false: "http1", true: "h2"}[h2], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+echoVIP+"/events?after=5s", nil)
			resp, err := c.Do(req) //nolint:bodyclose // closed by the defer below
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			first := make(chan string, 1)
			go func() {
				line, _ := bufio.NewReader(resp.Body).ReadString('\n')
				first <- line
			}()
			select {
			case line := <-first:
				if line != "data: first\n" {
					t.Errorf("first line %q", line)
				}
			case <-time.After(3 * time.Second):
				t.Fatal("first event not delivered before the stream ended: the waypoint buffered it")
			}

			resp2, err := c.Get("http://" + echoVIP + "/fixed")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp2.Body)
			resp2.Body.Close()
			if string(body) != "hello, mesh\n" || resp2.ContentLength != 12 {
				t.Errorf("fixed response: length %d body %q", resp2.ContentLength, body)
			}
		})
	}
}
