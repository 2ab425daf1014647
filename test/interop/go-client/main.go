// A Go gRPC client for the interop test (test/interop/go-client.test.ts): kubelet
// and the kubernetes-csi sidecars are grpc-go clients, so the driver's server is
// checked against grpc-go itself, not only against the project's Node client.
//
// It needs no generated code: a codec passes bytes through, and the test encodes
// and decodes the CSI messages with the project's own types. It reads one JSON
// call per line on stdin and writes one JSON answer per line on stdout:
//
//	{"method": "/csi.v1.Identity/Probe", "request": "<hex>", "timeoutMs": 1000, "repeat": 1}
//	{"code": 0, "message": "", "response": "<hex>", "ok": 1}
//
// With "repeat" > 1 the call is made that many times at once on the one
// connection, and "ok" counts the calls that succeeded (code and message are the
// first failure's).
//
//	go-client -socket /path/csi.sock -dial legacy|localhost
//
// "legacy" dials the socket path as the target, as kubelet before 1.26 and older
// csi-lib-utils do (grpc-go then sends the path as :authority); "localhost" sends
// :authority localhost, as current clients do.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/status"
)

type rawCodec struct{}

func (rawCodec) Marshal(v interface{}) ([]byte, error) { return *(v.(*[]byte)), nil }
func (rawCodec) Unmarshal(data []byte, v interface{}) error {
	out := v.(*[]byte)
	*out = append((*out)[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

type call struct {
	Method    string `json:"method"`
	Request   string `json:"request"`
	TimeoutMs int    `json:"timeoutMs"`
	Repeat    int    `json:"repeat"`
}

type answer struct {
	Code     uint32 `json:"code"`
	Message  string `json:"message"`
	Response string `json:"response"`
	OK       int    `json:"ok"`
}

func invoke(conn *grpc.ClientConn, c call, request []byte) (answer, error) {
	timeout := time.Duration(c.TimeoutMs) * time.Millisecond
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var response []byte
	err := conn.Invoke(ctx, c.Method, &request, &response, grpc.ForceCodec(rawCodec{}))
	if err != nil {
		s := status.Convert(err)
		return answer{Code: uint32(s.Code()), Message: s.Message()}, err
	}
	return answer{Response: hex.EncodeToString(response), OK: 1}, nil
}

func main() {
	socket := flag.String("socket", "", "the driver's unix socket")
	dial := flag.String("dial", "localhost", "legacy (the socket path as target and :authority) or localhost")
	flag.Parse()
	dialer := func(ctx context.Context, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", *socket)
	}
	target := "passthrough:///localhost"
	if *dial == "legacy" {
		target = *socket
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	conn, err := grpc.DialContext(ctx, target, grpc.WithInsecure(), grpc.WithBlock(), grpc.WithContextDialer(dialer))
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "dial %s: %v\n", target, err)
		os.Exit(2)
	}
	defer conn.Close()

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 8<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c call
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintf(os.Stderr, "bad input line: %v\n", err)
			os.Exit(2)
		}
		request, err := hex.DecodeString(c.Request)
		if err != nil {
			fmt.Fprintf(os.Stderr, "bad request hex: %v\n", err)
			os.Exit(2)
		}
		if c.Repeat <= 1 {
			a, _ := invoke(conn, c, request)
			out.Encode(a)
			continue
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		total := answer{}
		failed := false
		for i := 0; i < c.Repeat; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				a, err := invoke(conn, c, append([]byte(nil), request...))
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					total.OK++
				} else if !failed {
					failed = true
					total.Code, total.Message = a.Code, a.Message
				}
			}()
		}
		wg.Wait()
		out.Encode(total)
	}
}
