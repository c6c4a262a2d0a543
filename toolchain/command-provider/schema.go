package main

import "encoding/json"

// schemaJSON describes the two resources this provider implements, enough for tools that ask
// the provider for its schema. (The TypeScript SDK is generated already; it does not need it.)
func schemaJSON(version string) (string, error) {
	str := map[string]any{"type": "string"}
	secretStr := map[string]any{"type": "string", "secret": true}
	boolean := map[string]any{"type": "boolean"}
	strMap := map[string]any{"type": "object", "additionalProperties": str}
	anyArr := map[string]any{"type": "array", "items": map[string]any{"$ref": "pulumi.json#/Any"}}
	strArr := map[string]any{"type": "array", "items": str}
	logging := func(mod string) map[string]any {
		return map[string]any{"$ref": "#/types/command:" + mod + ":Logging"}
	}
	connProps := func() map[string]any {
		return map[string]any{
			"host": str, "port": map[string]any{"type": "number", "default": defaultPort},
			"user":               map[string]any{"type": "string", "default": defaultUser},
			"password":           secretStr,
			"privateKey":         secretStr,
			"privateKeyPassword": secretStr,
			"agentSocketPath":    str,
			"hostKey":            str,
			"dialErrorLimit":     map[string]any{"type": "integer", "default": defaultDialErrorLimit},
			"perDialTimeout":     map[string]any{"type": "integer", "default": defaultPerDialTimeout},
		}
	}
	conn := connProps()
	conn["proxy"] = map[string]any{"$ref": "#/types/command:remote:ProxyConnection"}
	common := func(mod string) map[string]any {
		return map[string]any{
			"create": str, "update": str, "delete": str, "stdin": str,
			"environment": strMap, "triggers": anyArr, "logging": logging(mod),
			"addPreviousOutputInEnv": boolean,
		}
	}
	with := func(m map[string]any, extra map[string]any) map[string]any {
		out := map[string]any{}
		for k, v := range m {
			out[k] = v
		}
		for k, v := range extra {
			out[k] = v
		}
		return out
	}
	remoteIn := with(common("remote"), map[string]any{
		"connection": map[string]any{"$ref": "#/types/command:remote:Connection", "secret": true}})
	localIn := with(common("local"), map[string]any{"interpreter": strArr, "dir": str})
	outs := map[string]any{"stdout": str, "stderr": str}
	loggingEnum := map[string]any{"type": "string", "enum": []any{
		map[string]any{"value": "stdout"}, map[string]any{"value": "stderr"},
		map[string]any{"value": "stdoutAndStderr"}, map[string]any{"value": "none"},
	}}
	schema := map[string]any{
		"name":        "command",
		"displayName": "Command",
		"version":     version,
		"description": "Run commands on this machine or on remote hosts over SSH (fou-tunnel's build).",
		"meta":        map[string]any{"moduleFormat": "(.*)"},
		"types": map[string]any{
			"command:remote:Connection": map[string]any{
				"type": "object", "properties": conn, "required": []string{"host"}},
			"command:remote:ProxyConnection": map[string]any{
				"type": "object", "properties": connProps(), "required": []string{"host"}},
			"command:remote:Logging": loggingEnum,
			"command:local:Logging":  loggingEnum,
		},
		"resources": map[string]any{
			tokenRemote: map[string]any{
				"description":     "A command run on a remote host over SSH.",
				"inputProperties": remoteIn,
				"requiredInputs":  []string{"connection"},
				"properties":      with(remoteIn, outs),
				"required":        []string{"connection", "stdout", "stderr"},
			},
			tokenLocal: map[string]any{
				"description":     "A command run on the machine running Pulumi.",
				"inputProperties": localIn,
				"properties":      with(localIn, outs),
				"required":        []string{"stdout", "stderr"},
			},
		},
	}
	b, err := json.Marshal(schema)
	return string(b), err
}
