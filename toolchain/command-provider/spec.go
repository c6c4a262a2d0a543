package main

// The typed view of a Command's inputs (or stored state), used when a command actually runs.

import (
	"fmt"
	"regexp"
	"strings"

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

var validLogging = map[string]bool{"stdout": true, "stderr": true, "stdoutAndStderr": true, "none": true}

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

// secretSources are the inputs whose secrecy makes stdout and stderr secret.
var secretSources = []string{pCreate, pUpdate, pDelete, pStdin, pEnvironment}

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
	Environment map[string]string
	Stdin       *string
	Logging     string
	AddPrevious bool
	Interpreter []string
	Dir         *string
	Conn        *connSpec
	// Secret is true when any of create/update/delete/stdin/environment is secret.
	Secret bool
}

// parseSpec decodes fully known inputs or state. Unknown values are an error here: commands only
// run outside of previews, when the engine has resolved everything.
func parseSpec(kind resourceKind, m resource.PropertyMap) (*commandSpec, error) {
	s := &commandSpec{Kind: kind, Logging: defaultLogging, AddPrevious: true}
	var err error
	if s.Create, err = get(m, pCreate).str(pCreate); err != nil {
		return nil, err
	}
	if s.Update, err = get(m, pUpdate).str(pUpdate); err != nil {
		return nil, err
	}
	if s.Delete, err = get(m, pDelete).str(pDelete); err != nil {
		return nil, err
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
		if !validLogging[*logging] {
			return nil, invalidLoggingError(*logging)
		}
		s.Logging = *logging
	}
	addPrev, err := get(m, pAddPrevious).boolean(pAddPrevious)
	if err != nil {
		return nil, err
	}
	if addPrev != nil {
		s.AddPrevious = *addPrev
	}
	s.Secret = secretInputs(m)

	if err := checkEnvNames(kind, s.Environment); err != nil {
		return nil, err
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
	if host == nil || *host == "" {
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
	for key, dst := range map[string]*int{
		"port": &c.Port, "dialErrorLimit": &c.DialErrorLimit, "perDialTimeout": &c.PerDialTimeout,
	} {
		v, err := get(m, key).integer(name(key))
		if err != nil {
			return nil, err
		}
		if v != nil {
			*dst = *v
		}
	}
	if c.Port < 1 || c.Port > 65535 {
		return nil, fmt.Errorf("%s must be between 1 and 65535, got %d", name("port"), c.Port)
	}
	if c.DialErrorLimit < -1 {
		return nil, fmt.Errorf("%s must be -1 (unlimited) or a non-negative number, got %d",
			name("dialErrorLimit"), c.DialErrorLimit)
	}
	if c.PerDialTimeout < 0 {
		return nil, fmt.Errorf("%s must not be negative, got %d", name("perDialTimeout"), c.PerDialTimeout)
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

func invalidLoggingError(v string) error {
	return fmt.Errorf("logging must be one of \"stdout\", \"stderr\", \"stdoutAndStderr\" or \"none\", got %q", v)
}

// secretInputs reports whether any input that shapes a command's output is secret.
func secretInputs(m resource.PropertyMap) bool {
	for _, k := range secretSources {
		if v, ok := m[resource.PropertyKey(k)]; ok && v.ContainsSecrets() {
			return true
		}
	}
	return false
}

var shellIdentifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkEnvNames rejects environment variable names that cannot be passed safely: for remote
// commands they become shell `export` statements, so they must be shell identifiers.
func checkEnvNames(kind resourceKind, env map[string]string) error {
	for _, k := range sortedKeys(env) {
		if err := checkEnvName(kind, k); err != nil {
			return err
		}
		if strings.ContainsRune(env[k], 0) {
			return fmt.Errorf("environment variable %q: value contains a NUL byte", k)
		}
	}
	return nil
}

func checkEnvName(kind resourceKind, k string) error {
	if kind == kindRemote {
		if !shellIdentifier.MatchString(k) {
			return fmt.Errorf("environment variable name %q is not a valid shell identifier "+
				"(letters, digits and underscores, not starting with a digit)", k)
		}
		return nil
	}
	if k == "" || strings.ContainsAny(k, "=\x00") {
		return fmt.Errorf("environment variable name %q is invalid (empty, or contains '=' or NUL)", k)
	}
	return nil
}
