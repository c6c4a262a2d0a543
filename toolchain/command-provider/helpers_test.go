package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
	"golang.org/x/crypto/ssh"
	"google.golang.org/protobuf/types/known/structpb"
)

// ---- keys ----

type testKey struct {
	signer ssh.Signer
	pem    string // OpenSSH private key
}

func newTestKey(t *testing.T) testKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	return testKey{signer: signer, pem: string(pem.EncodeToMemory(block))}
}

func (k testKey) authorized() string {
	return string(ssh.MarshalAuthorizedKey(k.signer.PublicKey()))
}

func init() {
	// Upstream (and this provider) offer the agent at SSH_AUTH_SOCK in addition to any key:
	// keep the tests independent of the environment they run in.
	os.Unsetenv("SSH_AUTH_SOCK")
}

// shellQuote returns s as one POSIX shell word (for paths in test scripts).
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// ---- an SSH server on 127.0.0.1 that runs each exec request with /bin/sh -c ----

// envReq is one "env" request a session received.
type envReq struct {
	name, value string
	accepted    bool
}

type sshServer struct {
	t         *testing.T
	hostKey   testKey
	clientKey ssh.PublicKey
	password  string
	// acceptEnv lists the names (glob patterns, like sshd's AcceptEnv) whose env requests are
	// accepted. Empty, as in a stock sshd config without AcceptEnv: every env request is refused.
	acceptEnv  []string
	ln         net.Listener
	addr       string
	mu         sync.Mutex
	commands   []string
	envReqs    []envReq
	tcpAccepts int // TCP connections accepted
	connects   int // SSH connections that completed the handshake and authentication
	open       int // SSH connections not closed yet
	wg         sync.WaitGroup
	closed     chan struct{}
	closeOnce  sync.Once
	authFailed int
	dir        string // working directory of the commands it runs
}

func newSSHServer(t *testing.T, client ssh.PublicKey) *sshServer {
	return &sshServer{t: t, hostKey: newTestKey(t), clientKey: client, closed: make(chan struct{}), dir: t.TempDir()}
}

// start listens on addr ("127.0.0.1:0" for any free port) and serves until the test ends.
func (s *sshServer) start(addr string) *sshServer {
	s.t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.ln = ln
	s.addr = ln.Addr().String()
	s.t.Cleanup(s.stop)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.tcpAccepts++
			s.mu.Unlock()
			s.wg.Add(1)
			go func() { defer s.wg.Done(); s.handleConn(c) }()
		}
	}()
	return s
}

func (s *sshServer) stop() {
	s.closeOnce.Do(func() {
		close(s.closed)
		if s.ln != nil {
			s.ln.Close()
		}
	})
	s.wg.Wait()
}

func (s *sshServer) port() int {
	_, p, _ := net.SplitHostPort(s.addr)
	n, _ := strconv.Atoi(p)
	return n
}

func (s *sshServer) config() *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			if s.clientKey != nil && string(key.Marshal()) == string(s.clientKey.Marshal()) {
				return nil, nil
			}
			s.mu.Lock()
			s.authFailed++
			s.mu.Unlock()
			return nil, errors.New("unknown key")
		},
	}
	if s.password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			if string(pw) == s.password {
				return nil, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	cfg.AddHostKey(s.hostKey.signer)
	return cfg
}

func (s *sshServer) handleConn(c net.Conn) {
	defer c.Close()
	go func() { <-s.closed; c.Close() }()
	conn, chans, reqs, err := ssh.NewServerConn(c, s.config())
	if err != nil {
		return
	}
	defer conn.Close()
	s.mu.Lock()
	s.connects++
	s.open++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
	}()
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	for nc := range chans {
		switch nc.ChannelType() {
		case "session":
			wg.Add(1)
			go func() { defer wg.Done(); s.handleSession(nc) }()
		case "direct-tcpip":
			wg.Add(1)
			go func() { defer wg.Done(); s.handleDirect(nc) }()
		default:
			nc.Reject(ssh.UnknownChannelType, "not supported")
		}
	}
	wg.Wait()
}

func (s *sshServer) handleSession(nc ssh.NewChannel) {
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	var cmd *exec.Cmd
	var env []string // accepted env requests, NAME=value
	done := make(chan struct{})
	kill := func() {
		if cmd != nil && cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
	}
	for {
		select {
		case <-done:
			return
		case req, ok := <-reqs:
			if !ok {
				// Session closed by the client: stop whatever it started.
				kill()
				if cmd != nil {
					<-done
				}
				return
			}
			switch req.Type {
			case "env":
				var kv struct{ Name, Value string }
				if err := ssh.Unmarshal(req.Payload, &kv); err != nil {
					req.Reply(false, nil)
					continue
				}
				ok := s.acceptsEnv(kv.Name)
				s.mu.Lock()
				s.envReqs = append(s.envReqs, envReq{kv.Name, kv.Value, ok})
				s.mu.Unlock()
				if ok {
					env = append(env, kv.Name+"="+kv.Value)
				}
				req.Reply(ok, nil)
			case "signal":
				kill()
				req.Reply(true, nil)
			case "exec":
				if cmd != nil {
					req.Reply(false, nil)
					continue
				}
				var payload struct{ Command string }
				if err := ssh.Unmarshal(req.Payload, &payload); err != nil {
					req.Reply(false, nil)
					continue
				}
				s.mu.Lock()
				s.commands = append(s.commands, payload.Command)
				s.mu.Unlock()
				req.Reply(true, nil)
				cmd = exec.Command("/bin/sh", "-c", payload.Command)
				cmd.Stdin = ch
				cmd.Dir = s.dir
				cmd.Env = append([]string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + s.dir}, env...)
				cmd.Stdout = ch
				cmd.Stderr = ch.Stderr()
				cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
				cmd.WaitDelay = 2 * time.Second
				if err := cmd.Start(); err != nil {
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{127}))
					return
				}
				go func() {
					err := cmd.Wait()
					status := 0
					var ee *exec.ExitError
					if errors.As(err, &ee) {
						status = ee.ExitCode()
						if status < 0 {
							status = 255
						}
					}
					ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
					close(done)
				}()
			default:
				req.Reply(false, nil)
			}
		}
	}
}

// handleDirect forwards a jump-host connection, to loopback addresses only.
func (s *sshServer) handleDirect(nc ssh.NewChannel) {
	var p struct {
		Host     string
		Port     uint32
		OrigHost string
		OrigPort uint32
	}
	if err := ssh.Unmarshal(nc.ExtraData(), &p); err != nil {
		nc.Reject(ssh.ConnectionFailed, "bad request")
		return
	}
	ip := net.ParseIP(p.Host)
	if p.Host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		nc.Reject(ssh.Prohibited, "loopback only")
		return
	}
	target, err := net.Dial("tcp", net.JoinHostPort(p.Host, strconv.Itoa(int(p.Port))))
	if err != nil {
		nc.Reject(ssh.ConnectionFailed, err.Error())
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		target.Close()
		return
	}
	go ssh.DiscardRequests(reqs)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(ch, target); ch.CloseWrite() }()
	go func() { defer wg.Done(); io.Copy(target, ch); target.(*net.TCPConn).CloseWrite() }()
	go func() { <-s.closed; target.Close(); ch.Close() }()
	wg.Wait()
	target.Close()
	ch.Close()
}

// acceptsEnv reports whether an env request for name is accepted (sshd's AcceptEnv matching).
func (s *sshServer) acceptsEnv(name string) bool {
	for _, pat := range s.acceptEnv {
		if ok, _ := path.Match(pat, name); ok {
			return true
		}
	}
	return false
}

func (s *sshServer) execCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.commands)
}

func (s *sshServer) envRequests() []envReq {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]envReq(nil), s.envReqs...)
}

// envNames lists the names of the env requests received so far, in order.
func (s *sshServer) envNames() []string {
	var names []string
	for _, e := range s.envRequests() {
		names = append(names, e.name)
	}
	return names
}

// openConns waits up to a second for the client to close its connections and returns how many
// are still open.
func (s *sshServer) openConns() int {
	for i := 0; ; i++ {
		s.mu.Lock()
		n := s.open
		s.mu.Unlock()
		if n == 0 || i == 20 {
			return n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sshServer) counts() (accepts, connects int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tcpAccepts, s.connects
}

// ---- property helpers ----

func str(s string) resource.PropertyValue                    { return resource.NewStringProperty(s) }
func num(n float64) resource.PropertyValue                   { return resource.NewNumberProperty(n) }
func secret(v resource.PropertyValue) resource.PropertyValue { return resource.MakeSecret(v) }
func obj(m map[string]resource.PropertyValue) resource.PropertyValue {
	pm := resource.PropertyMap{}
	for k, v := range m {
		pm[resource.PropertyKey(k)] = v
	}
	return resource.NewObjectProperty(pm)
}
func props(m map[string]resource.PropertyValue) resource.PropertyMap { return obj(m).ObjectValue() }
func unknown() resource.PropertyValue                                { return resource.MakeComputed(str("")) }

func toStruct(t *testing.T, m resource.PropertyMap) *structpb.Struct {
	t.Helper()
	s, err := marshal(m, "test")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fromStruct(t *testing.T, s *structpb.Struct) resource.PropertyMap {
	t.Helper()
	m, err := unmarshal(s, "test")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// connection returns a connection object for srv using key (as the SDK sends it: secret).
func connection(srv *sshServer, key testKey, extra map[string]resource.PropertyValue) resource.PropertyValue {
	m := map[string]resource.PropertyValue{
		"host":           str("127.0.0.1"),
		"port":           num(float64(srv.port())),
		"user":           str("tester"),
		"privateKey":     str(key.pem),
		"dialErrorLimit": num(2),
		"perDialTimeout": num(5),
	}
	for k, v := range extra {
		m[k] = v
	}
	return secret(obj(m))
}

// ---- a log recorder ----

type logEntry struct {
	sev       pulumirpc.LogSeverity
	urn, msg  string
	ephemeral bool
}

type recLogger struct {
	mu      sync.Mutex
	entries []logEntry
}

func (r *recLogger) Log(_ context.Context, sev pulumirpc.LogSeverity, urn, msg string, eph bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.entries = append(r.entries, logEntry{sev, urn, msg, eph})
}

// withSeverity returns the messages logged at sev, and whether each was ephemeral.
func (r *recLogger) withSeverity(sev pulumirpc.LogSeverity) []logEntry {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []logEntry
	for _, e := range r.entries {
		if e.sev == sev {
			out = append(out, e)
		}
	}
	return out
}

func (r *recLogger) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.entries {
		out = append(out, e.msg)
	}
	return out
}

func testProvider() (*commandProvider, *recLogger) {
	p := newProvider("test", nil)
	rec := &recLogger{}
	p.log = rec
	return p, rec
}

const (
	remoteURN = "urn:pulumi:dev::fou-tunnel::command:remote:Command::step"
	localURN  = "urn:pulumi:dev::fou-tunnel::command:local:Command::step"
)

// ---- calling the provider ----

func doCreate(t *testing.T, p *commandProvider, urn string, inputs resource.PropertyMap, timeout float64) (
	string, resource.PropertyMap, error) {
	t.Helper()
	resp, err := p.Create(context.Background(), &pulumirpc.CreateRequest{
		Urn: urn, Properties: toStruct(t, inputs), Timeout: timeout})
	if err != nil {
		return "", nil, err
	}
	return resp.GetId(), fromStruct(t, resp.GetProperties()), nil
}

func doUpdate(t *testing.T, p *commandProvider, urn string, oldInputs, state, news resource.PropertyMap) (
	resource.PropertyMap, error) {
	t.Helper()
	resp, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: urn, Id: "x",
		OldInputs: toStruct(t, oldInputs), Olds: toStruct(t, state), News: toStruct(t, news)})
	if err != nil {
		return nil, err
	}
	return fromStruct(t, resp.GetProperties()), nil
}

func doDelete(t *testing.T, p *commandProvider, urn string, state resource.PropertyMap, timeout float64) error {
	t.Helper()
	_, err := p.Delete(context.Background(), &pulumirpc.DeleteRequest{Urn: urn, Id: "x",
		Properties: toStruct(t, state), Timeout: timeout})
	return err
}

// plainString reads a string output, failing the test if it is missing; it reports secrecy.
func plainString(t *testing.T, m resource.PropertyMap, key string) (string, bool) {
	t.Helper()
	v, ok := m[resource.PropertyKey(key)]
	if !ok {
		t.Fatalf("output %q missing in %v", key, m)
	}
	isSecret := false
	if v.IsSecret() {
		isSecret = true
		v = v.SecretValue().Element
	}
	if !v.IsString() {
		t.Fatalf("output %q is not a string: %v", key, v)
	}
	return v.StringValue(), isSecret
}
