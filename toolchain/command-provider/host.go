package main

import (
	"context"
	"sync"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// hostLogger sends log messages to the engine once the provider knows the engine's address
// (from the command line, Handshake or Attach). Before that, messages are dropped.
type hostLogger struct {
	mu     sync.Mutex
	addr   string
	conn   *grpc.ClientConn
	client pulumirpc.EngineClient
}

func (h *hostLogger) connect(addr string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if addr == "" || addr == h.addr {
		return nil
	}
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		rpcutil.GrpcChannelOptions(),
	)
	if err != nil {
		return err
	}
	if h.conn != nil {
		h.conn.Close()
	}
	h.addr, h.conn, h.client = addr, conn, pulumirpc.NewEngineClient(conn)
	return nil
}

func (h *hostLogger) Log(ctx context.Context, sev pulumirpc.LogSeverity, urn, msg string, ephemeral bool) {
	if h == nil {
		return
	}
	h.mu.Lock()
	client := h.client
	h.mu.Unlock()
	if client == nil {
		return
	}
	// Logging is best effort: a failed log must not fail the command.
	_, _ = client.Log(ctx, &pulumirpc.LogRequest{Severity: sev, Message: msg, Urn: urn, Ephemeral: ephemeral})
}
