package main

// The typed view of a Command's inputs (or stored state), used when a command actually runs.

import (
	"fmt"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

type resourceKind string

const (
	kindRemote resourceKind = "remote"
	kindLocal  resourceKind = "local"

	tokenRemote = "command:remote:Command"
	tokenLocal  = "command:local:Command"
)

// kindOf maps a resource type token to the kind of command it runs.
func kindOf(typ, urn string) (resourceKind, error) {
	if typ == "" && urn != "" {
		typ = string(resource.URN(urn).Type())
	}
	switch typ {
	case tokenRemote:
		return kindRemote, nil
	case tokenLocal:
		return kindLocal, nil
	}
	return "", fmt.Errorf("resource type %q is not supported by this build of the command provider "+
		"(only %s and %s are)", typ, tokenRemote, tokenLocal)
}

// Defaults, matching the @pulumi/command 1.2.1 SDK.
const (
	defaultPort           = 22
	defaultUser           = "root"
	defaultDialErrorLimit = 10
	defaultPerDialTimeout = 15
	defaultLogging        = "stdoutAndStderr"
)

var defaultInterpreter = []string{"/bin/sh", "-c"}

// logsStdout and logsStderr interpret `logging` as upstream does: absent means both; any value
// other than the four documented ones logs nothing (upstream does not validate the enum).
func logsStdout(l string) bool { return l == "stdout" || l == "stdoutAndStderr" }
func logsStderr(l string) bool { return l == "stderr" || l == "stdoutAndStderr" }

// Property names.
const (
	pConnection     = "connection"
	pCreate         = "create"
	pUpdate         = "update"
	pDelete         = "delete"
	pEnvironment    = "environment"
	pStdin          = "stdin"
	pTriggers       = "triggers"
	pLogging        = "logging"
	pAddPrevious    = "addPreviousOutputInEnv"
	pInterpreter    = "interpreter"
	pDir            = "dir"
	pAssetPaths     = "assetPaths"
	pArchivePaths   = "archivePaths"
	pStdout         = "stdout"
	pStderr         = "stderr"
	envPrevStdout   = "PULUMI_COMMAND_STDOUT"
	envPrevStderr   = "PULUMI_COMMAND_STDERR"
	unsupportedNote = "is not supported by this build of the command provider"
)

// outputOnly are properties the provider computes; they never count as inputs.
var outputOnly = map[string]bool{pStdout: true, pStderr: true, "assets": true, "archive": true}

// inputKeys are a resource's input properties (as in its schema).
func inputKeys(kind resourceKind) []string {
	keys := []string{pTriggers, pCreate, pUpdate, pDelete, pStdin, pLogging, pEnvironment, pAddPrevious}
	if kind == kindLocal {
		return append(keys, pInterpreter, pDir, pAssetPaths, pArchivePaths)
	}
	return append(keys, pConnection)
}

// connSpec is a connection as the user gave it. Optional strings keep the difference between
// absent (nil) and empty, because upstream does too: an empty hostKey is parsed (and fails), an
// empty password is offered.
type connSpec struct {
	Host               string
	Port               int
	User               string
	Password           *string
	PrivateKey         *string
	PrivateKeyPassword *string
	AgentSocketPath    *string
	HostKey            *string
	DialErrorLimit     int
	PerDialTimeout     int
	Proxy              *connSpec
}

type commandSpec struct {
	Kind        resourceKind
	Create      *string
	Update      *string
	Delete      *string
	// Which of the command texts are secret (they are then left out of error messages).
	CreateSecret, UpdateSecret, DeleteSecret bool
	Environment map[string]string
	Stdin       *string
	Logging     string
	AddPrevious bool
	Interpreter []string
	Dir         *string
	Conn        *connSpec
}

// parseSpec decodes fully known inputs or state. Unknown values are an error here: commands only
// run outside of previews, when the engine has resolved everything.
func parseSpec(kind resourceKind, m resource.PropertyMap) (*commandSpec, error) {
	s := &commandSpec{Kind: kind, Logging: defaultLogging, AddPrevious: true}
	var err error
	for _, c := range []struct {
		key    string
		text   **string
		secret *bool
	}{{pCreate, &s.Create, &s.CreateSecret}, {pUpdate, &s.Update, &s.UpdateSecret}, {pDelete, &s.Delete, &s.DeleteSecret}} {
		f := get(m, c.key)
		if *c.text, err = f.str(c.key); err != nil {
			return nil, err
		}
		*c.secret = f.secret
	}
	if s.Stdin, err = get(m, pStdin).str(pStdin); err != nil {
		return nil, err
	}
	if s.Environment, err = get(m, pEnvironment).stringMap(pEnvironment); err != nil {
		return nil, err
	}
	logging, err := get(m, pLogging).str(pLogging)
	if err != nil {
		return nil, err
	}
	if logging != nil {
		s.Logging = *logging
	}
	addPrev, err := get(m, pAddPrevious).boolean(pAddPrevious)
	if err != nil {
		return nil, err
	}
	if addPrev != nil {
		s.AddPrevious = *addPrev
	}

	switch kind {
	case kindLocal:
		for _, k := range []string{pAssetPaths, pArchivePaths} {
			if !isAbsent(m, k) {
				return nil, fmt.Errorf("%s %s", k, unsupportedNote)
			}
		}
		if s.Interpreter, err = get(m, pInterpreter).strings(pInterpreter); err != nil {
			return nil, err
		}
		if len(s.Interpreter) == 0 {
			s.Interpreter = defaultInterpreter
		}
		if s.Dir, err = get(m, pDir).str(pDir); err != nil {
			return nil, err
		}
	case kindRemote:
		obj, err := get(m, pConnection).object(pConnection)
		if err != nil {
			return nil, err
		}
		if obj == nil {
			return nil, fmt.Errorf("missing required property %q", pConnection)
		}
		if s.Conn, err = parseConn(obj, pConnection, true); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func parseConn(m resource.PropertyMap, path string, allowProxy bool) (*connSpec, error) {
	c := &connSpec{Port: defaultPort, User: defaultUser, DialErrorLimit: defaultDialErrorLimit,
		PerDialTimeout: defaultPerDialTimeout}
	name := func(k string) string { return path + "." + k }
	host, err := get(m, "host").str(name("host"))
	if err != nil {
		return nil, err
	}
	if host == nil {
		return nil, fmt.Errorf("missing required property %q", name("host"))
	}
	c.Host = *host
	if user, err := get(m, "user").str(name("user")); err != nil {
		return nil, err
	} else if user != nil {
		c.User = *user
	}
	for key, dst := range map[string]**string{
		"password": &c.Password, "privateKey": &c.PrivateKey, "privateKeyPassword": &c.PrivateKeyPassword,
		"agentSocketPath": &c.AgentSocketPath, "hostKey": &c.HostKey,
	} {
		if *dst, err = get(m, key).str(name(key)); err != nil {
			return nil, err
		}
	}
	// The port is a number in upstream's schema (a fraction is cut off when dialing); the
	// other two are integers.
	if f := get(m, "port"); f.present {
		if f.unknown || !f.v.IsNumber() {
			return nil, fmt.Errorf("%s must be a number", name("port"))
		}
		c.Port = int(f.v.NumberValue())
	}
	for key, dst := range map[string]*int{"dialErrorLimit": &c.DialErrorLimit, "perDialTimeout": &c.PerDialTimeout} {
		v, err := get(m, key).integer(name(key))
		if err != nil {
			return nil, err
		}
		if v != nil {
			*dst = *v
		}
	}
	if allowProxy {
		proxy, err := get(m, "proxy").object(name("proxy"))
		if err != nil {
			return nil, err
		}
		if proxy != nil {
			if c.Proxy, err = parseConn(proxy, name("proxy"), false); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}
