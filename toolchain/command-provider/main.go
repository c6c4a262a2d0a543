// Command pulumi-resource-command is a Pulumi resource provider for the @pulumi/command 1.2.1
// SDK's command:remote:Command and command:local:Command resources.
//
// The upstream provider (github.com/pulumi/pulumi-command) is not available to this project's
// build machines, so fou-tunnel builds this independent implementation instead. See README.md
// for what it implements and where it deliberately differs from upstream.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/util/rpcutil"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"google.golang.org/grpc"
)

// version is what GetPluginInfo reports; override with -ldflags "-X main.version=…".
var version = "1.2.1"

func main() {
	engineAddress, showVersion := parseArgs(os.Args[1:])
	if showVersion {
		fmt.Println(version)
		return
	}
	if err := serve(engineAddress); err != nil {
		fmt.Fprintf(os.Stderr, "pulumi-resource-command: %v\n", err)
		os.Exit(1)
	}
}

// parseArgs picks the engine address out of the arguments the engine passes to a provider
// (flags such as --logtostderr, -v=9 or --tracing URL come first).
func parseArgs(args []string) (engineAddress string, showVersion bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-version" || a == "--version":
			showVersion = true
		case a == "-tracing" || a == "--tracing":
			i++ // flag with a separate value
		case strings.HasPrefix(a, "-"):
		default:
			engineAddress = a
		}
	}
	return engineAddress, showVersion
}

func serve(engineAddress string) error {
	// The engine sends SIGINT when it is done with the provider.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	host := &hostLogger{}
	if engineAddress != "" {
		if err := host.connect(engineAddress); err != nil {
			return fmt.Errorf("could not connect to the engine: %w", err)
		}
		// Exit when the engine goes away, so an interrupted CLI leaves no provider behind.
		if err := rpcutil.Healthcheck(ctx, engineAddress, 5*time.Minute, stop); err != nil {
			return fmt.Errorf("could not start the engine health check: %w", err)
		}
	}
	prov := newProvider(version, host)
	cancel := make(chan bool)
	go func() {
		<-ctx.Done()
		_, _ = prov.Cancel(context.Background(), nil)
		close(cancel)
	}()
	handle, err := rpcutil.ServeWithOptions(rpcutil.ServeOptions{
		Cancel: cancel,
		Init: func(srv *grpc.Server) error {
			pulumirpc.RegisterResourceProviderServer(srv, prov)
			return nil
		},
	})
	if err != nil {
		return err
	}
	// The provider protocol: announce the port on stdout.
	fmt.Printf("%d\n", handle.Port)
	return <-handle.Done
}
