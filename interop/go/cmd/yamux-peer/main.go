// Command yamux-peer runs hashicorp/yamux (v0.1.2, the version go-plugin
// v1.8.0 uses) against goplug's Rust yamux for the interop tests.
//
// It dials (-dial PATH) or listens on (-listen PATH, one connection) a Unix
// socket, runs a yamux client or server session (-role) with DefaultConfig
// plus the flag-tunable keepalive interval, write timeout and stream open
// timeout, runs one scenario (-scenario) and prints one JSON object on
// stdout. It exits 0 when the scenario succeeded, 1 otherwise.
//
// Scenarios (what the Rust side must do in brackets):
//
//	echo         accept streams and echo each until EOF, then close it; ends
//	             when the session ends [open streams, write, shut down, read]
//	open-many    open -n streams at once, write a distinct message on each,
//	             half-close, read the echo to EOF and compare [echo]
//	big          open one stream, write -size pseudo-random bytes while reading
//	             the echo, compare SHA-256 [echo]
//	keepalive    stay connected -seconds (use a short -keepalive and
//	             -write-timeout), then check the session is alive and does an
//	             echo round trip [answer pings, echo]
//	open-silent  open a stream (use a short -open-timeout), wait -seconds
//	             without writing, check the session is alive and answers a
//	             ping [accept the stream, never write on it]
package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
)

type result struct {
	OK       bool   `json:"ok"`
	Scenario string `json:"scenario"`
	Role     string `json:"role"`
	Error    string `json:"error,omitempty"`
	Streams  int64  `json:"streams"`
	Bytes    int64  `json:"bytes"`
	SHA256   string `json:"sha256,omitempty"`
	Alive    bool   `json:"alive"`
	RTTMS    int64  `json:"rtt_ms,omitempty"`
}

func main() {
	dial := flag.String("dial", "", "Unix socket to connect to")
	listen := flag.String("listen", "", "Unix socket to listen on (one connection)")
	role := flag.String("role", "client", "yamux role: client or server")
	scenario := flag.String("scenario", "echo", "echo, open-many, big, keepalive or open-silent")
	keepalive := flag.Duration("keepalive", 30*time.Second, "KeepAliveInterval")
	writeTimeout := flag.Duration("write-timeout", 10*time.Second, "ConnectionWriteTimeout (also the ping reply timeout)")
	openTimeout := flag.Duration("open-timeout", 75*time.Second, "StreamOpenTimeout")
	n := flag.Int("n", 50, "streams for open-many")
	size := flag.Int("size", 4<<20, "bytes each way for big")
	seconds := flag.Float64("seconds", 3, "how long keepalive and open-silent wait")
	flag.Parse()

	res := result{Scenario: *scenario, Role: *role}
	err := run(&res, *dial, *listen, *role, *scenario, *keepalive, *writeTimeout, *openTimeout, *n, *size,
		time.Duration(*seconds*float64(time.Second)))
	if err != nil {
		res.Error = err.Error()
	} else {
		res.OK = true
	}
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
	if err != nil {
		os.Exit(1)
	}
}

func connect(dial, listen string) (net.Conn, error) {
	switch {
	case dial != "" && listen == "":
		return net.Dial("unix", dial)
	case listen != "" && dial == "":
		l, err := net.Listen("unix", listen)
		if err != nil {
			return nil, err
		}
		defer l.Close()
		return l.Accept()
	default:
		return nil, errors.New("exactly one of -dial and -listen is required")
	}
}

func run(res *result, dial, listen, role, scenario string, keepalive, writeTimeout, openTimeout time.Duration,
	n, size int, wait time.Duration) error {
	conn, err := connect(dial, listen)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()

	config := yamux.DefaultConfig()
	config.KeepAliveInterval = keepalive
	config.ConnectionWriteTimeout = writeTimeout
	config.StreamOpenTimeout = openTimeout
	config.LogOutput = os.Stderr
	var session *yamux.Session
	switch role {
	case "client":
		session, err = yamux.Client(conn, config)
	case "server":
		session, err = yamux.Server(conn, config)
	default:
		err = fmt.Errorf("unknown role %q", role)
	}
	if err != nil {
		return err
	}
	defer session.Close()

	switch scenario {
	case "echo":
		return echo(res, session)
	case "open-many":
		return openMany(res, session, n)
	case "big":
		return big(res, session, size)
	case "keepalive":
		return stayAlive(res, session, wait)
	case "open-silent":
		return openSilent(res, session, wait)
	default:
		return fmt.Errorf("unknown scenario %q", scenario)
	}
}

// echo serves until the peer ends the session.
func echo(res *result, session *yamux.Session) error {
	var wg sync.WaitGroup
	var streams, total atomic.Int64
	var failed atomic.Value
	for {
		stream, err := session.AcceptStream()
		if err != nil {
			break
		}
		streams.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer stream.Close()
			n, err := io.Copy(stream, stream)
			total.Add(n)
			if err != nil {
				failed.Store(fmt.Errorf("echo on stream %d: %w", stream.StreamID(), err))
			}
		}()
	}
	wg.Wait()
	res.Streams, res.Bytes = streams.Load(), total.Load()
	if err, ok := failed.Load().(error); ok {
		return err
	}
	return nil
}

// roundTrip writes data, half-closes, and returns everything read until EOF.
func roundTrip(stream *yamux.Stream, data []byte) ([]byte, error) {
	writeErr := make(chan error, 1)
	go func() {
		_, err := stream.Write(data)
		if cerr := stream.Close(); err == nil {
			err = cerr
		}
		writeErr <- err
	}()
	got, err := io.ReadAll(stream)
	if werr := <-writeErr; werr != nil {
		return got, fmt.Errorf("write: %w", werr)
	}
	if err != nil {
		return got, fmt.Errorf("read: %w", err)
	}
	return got, nil
}

func openMany(res *result, session *yamux.Session, n int) error {
	errs := make(chan error, n)
	var total atomic.Int64
	for i := 0; i < n; i++ {
		go func() {
			stream, err := session.OpenStream()
			if err != nil {
				errs <- fmt.Errorf("open %d: %w", i, err)
				return
			}
			message := bytes.Repeat([]byte(fmt.Sprintf("stream %d says hello; ", i)), 100+i)
			got, err := roundTrip(stream, message)
			total.Add(int64(len(got)))
			if err == nil && !bytes.Equal(got, message) {
				err = fmt.Errorf("stream %d: echoed %d bytes, want %d", stream.StreamID(), len(got), len(message))
			}
			errs <- err
		}()
	}
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil {
			return err
		}
	}
	res.Streams, res.Bytes = int64(n), total.Load()
	return nil
}

func big(res *result, session *yamux.Session, size int) error {
	data := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(data)
	stream, err := session.OpenStream()
	if err != nil {
		return err
	}
	got, err := roundTrip(stream, data)
	if err != nil {
		return err
	}
	sent, received := sha256.Sum256(data), sha256.Sum256(got)
	res.Streams, res.Bytes, res.SHA256 = 1, int64(len(got)), hex.EncodeToString(received[:])
	if sent != received {
		return fmt.Errorf("echo of %d bytes came back as %d bytes with another checksum", len(data), len(got))
	}
	return nil
}

func stayAlive(res *result, session *yamux.Session, wait time.Duration) error {
	select {
	case <-session.CloseChan():
		return errors.New("session closed while idle (keepalive failed?)")
	case <-time.After(wait):
	}
	res.Alive = !session.IsClosed()
	stream, err := session.OpenStream()
	if err != nil {
		return fmt.Errorf("open after idling: %w", err)
	}
	got, err := roundTrip(stream, []byte("still there?"))
	if err != nil {
		return err
	}
	if string(got) != "still there?" {
		return fmt.Errorf("echo after idling: %q", got)
	}
	res.Streams, res.Bytes = 1, int64(len(got))
	return nil
}

func openSilent(res *result, session *yamux.Session, wait time.Duration) error {
	stream, err := session.OpenStream()
	if err != nil {
		return err
	}
	defer stream.Close()
	select {
	case <-session.CloseChan():
		return errors.New("session closed while the stream was silent (ACK not sent?)")
	case <-time.After(wait):
	}
	res.Alive = !session.IsClosed()
	rtt, err := session.Ping()
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	res.Streams, res.RTTMS = 1, rtt.Milliseconds()
	return nil
}
