package main

// Running a command: capturing its output, streaming it to the engine line by line, and
// turning failures into readable errors.

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

// engineLogger sends messages to the Pulumi engine, attached to a resource.
type engineLogger interface {
	Log(ctx context.Context, sev pulumirpc.LogSeverity, urn, msg string, ephemeral bool)
}


// prevOutputs are the stdout and stderr stored by the last create or update. They reach the
// next update or delete as PULUMI_COMMAND_STDOUT and PULUMI_COMMAND_STDERR, each only when it
// is not empty.
type prevOutputs struct {
	Stdout string
	Stderr string
}

// run is one execution of one of a resource's commands.
type run struct {
	Op      string // create, update or delete: for messages
	URN     string
	Command string
	// CommandSecret leaves the command text out of error messages.
	CommandSecret bool
	Env           map[string]string
	Prev          *prevOutputs // previous outputs to pass in the environment, or nil
	Stdin         *string
	Logging       string
	Log           engineLogger
}

// status is an ephemeral info message (it shows while the step runs).
func (r *run) status(ctx context.Context, msg string) {
	r.Log.Log(ctx, pulumirpc.LogSeverity_INFO, r.URN, msg, true)
}

func (r *run) warn(ctx context.Context, msg string) {
	r.Log.Log(ctx, pulumirpc.LogSeverity_WARNING, r.URN, msg, false)
}

func (r *run) error(ctx context.Context, msg string) {
	r.Log.Log(ctx, pulumirpc.LogSeverity_ERROR, r.URN, msg, false)
}

// execute runs r as described by spec (remote over SSH or local) and returns the captured
// stdout and stderr, each without one trailing newline.
func execute(ctx context.Context, spec *commandSpec, r *run) (stdout, stderr string, err error) {
	out := newCapture(ctx, r)
	switch spec.Kind {
	case kindRemote:
		err = runRemote(ctx, spec.Conn, r, out)
	case kindLocal:
		err = runLocal(ctx, spec, r, out)
	default:
		err = fmt.Errorf("unknown command kind %q", spec.Kind)
	}
	out.close()
	if err != nil {
		return "", "", r.failure(err, out)
	}
	stdout = strings.TrimSuffix(out.stdout.String(), "\n")
	stderr = strings.TrimSuffix(out.stderr.String(), "\n")
	return stdout, stderr, nil
}

// ranError marks an error from a command that was started: its output goes into the message.
type ranError struct{ err error }

func (e *ranError) Error() string { return e.err.Error() }
func (e *ranError) Unwrap() error { return e.err }

// failure turns a run error into the message shown to the user. When the command was started,
// it has upstream's shape: the exit status, `running "<command>":` (unless the command is
// secret), then everything it printed, stdout and stderr interleaved as they came.
func (r *run) failure(err error, out *capture) error {
	ran, ok := err.(*ranError)
	if !ok {
		return fmt.Errorf("%s: %w", r.Op, err)
	}
	command := fmt.Sprintf("%q", r.Command)
	if r.CommandSecret {
		command = "(the command is secret)"
	}
	return fmt.Errorf("%v: running %s:\n%s", ran.err, command, out.combined.String())
}

// capture collects a command's stdout and stderr (separately and interleaved) and streams
// complete lines to the engine as ephemeral status messages, as `logging` asks.
type capture struct {
	mu                       sync.Mutex // guards combined
	stdout, stderr, combined bytes.Buffer
	outW, errW               *lineWriter
	lines                    chan string
	done                     chan struct{}
}

func newCapture(ctx context.Context, r *run) *capture {
	c := &capture{lines: make(chan string, 256), done: make(chan struct{})}
	c.outW = &lineWriter{c: c, buf: &c.stdout, stream: logsStdout(r.Logging)}
	c.errW = &lineWriter{c: c, buf: &c.stderr, stream: logsStderr(r.Logging)}
	go func() {
		defer close(c.done)
		for line := range c.lines {
			// Logging goes on even if the operation is cancelled: use a fresh, bounded context.
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			r.status(lctx, line)
			cancel()
		}
	}()
	return c
}

// close flushes partial lines and waits for the logger to drain.
func (c *capture) close() {
	c.outW.flush()
	c.errW.flush()
	close(c.lines)
	<-c.done
}

// lineWriter appends to buf (and the interleaved buffer) and, when stream is set, sends each
// complete line to the logger.
type lineWriter struct {
	c       *capture
	mu      sync.Mutex
	buf     *bytes.Buffer
	stream  bool
	partial []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.c.mu.Lock()
	w.c.combined.Write(p)
	w.c.mu.Unlock()
	if !w.stream {
		return len(p), nil
	}
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		w.c.lines <- strings.TrimSuffix(string(w.partial[:i]), "\r")
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > 64*1024 {
		// A very long line without a newline: log what we have.
		w.c.lines <- string(w.partial)
		w.partial = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stream && len(w.partial) > 0 {
		w.c.lines <- strings.TrimSuffix(string(w.partial), "\r")
	}
	w.partial = nil
}
