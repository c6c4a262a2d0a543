package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func baseRemoteInputs() resource.PropertyMap {
	return props(map[string]resource.PropertyValue{
		"connection": secret(obj(map[string]resource.PropertyValue{
			"host": str("10.0.0.5"), "port": num(22), "user": str("root"),
			"dialErrorLimit": num(10), "perDialTimeout": num(15),
		})),
		"create":      str("echo create"),
		"update":      str("echo update"),
		"delete":      str("echo delete"),
		"environment": obj(map[string]resource.PropertyValue{"A": str("1")}),
		"stdin":       str("in"),
		"triggers":    resource.NewArrayProperty([]resource.PropertyValue{str("t1")}),
		"logging":     str("stdout"),
	})
}

func diffVia(t *testing.T, urn string, olds, news resource.PropertyMap, ignore ...string) *pulumirpc.DiffResponse {
	t.Helper()
	p, _ := testProvider()
	// The state holds the inputs plus outputs; old_inputs holds only the inputs.
	state := olds.Copy()
	state["stdout"] = str("previous out")
	state["stderr"] = str("")
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: urn, Olds: toStruct(t, state), OldInputs: toStruct(t, olds), News: toStruct(t, news),
		IgnoreChanges: ignore})
	if err != nil {
		t.Fatalf("Diff: %v", err)
	}
	return resp
}

// sdkReplaceOnChanges is the replaceOnChanges option @pulumi/command 1.2.1 adds to every
// Command (remote/command.js and local/command.js).
var sdkReplaceOnChanges = []string{"triggers[*]"}

// engineReplaces applies the engine's rule for a replaceOnChanges option to a provider diff:
// a detailed-diff path under one of the option's paths becomes a replacement.
func engineReplaces(t *testing.T, resp *pulumirpc.DiffResponse, replaceOnChanges []string) bool {
	t.Helper()
	if len(resp.GetReplaces()) > 0 {
		return true
	}
	for path, d := range resp.GetDetailedDiff() {
		switch d.GetKind() {
		case pulumirpc.PropertyDiff_ADD_REPLACE, pulumirpc.PropertyDiff_DELETE_REPLACE, pulumirpc.PropertyDiff_UPDATE_REPLACE:
			return true
		}
		pp, err := resource.ParsePropertyPath(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range replaceOnChanges {
			rp, err := resource.ParsePropertyPath(r)
			if err != nil {
				t.Fatal(err)
			}
			if rp.Contains(pp) {
				return true
			}
		}
	}
	return false
}

func TestSDKAddsReplaceOnChangesForTriggers(t *testing.T) {
	for _, f := range []string{"remote/command.js", "local/command.js"} {
		path := filepath.Join("..", "..", "node_modules", "@pulumi", "command", f)
		b, err := os.ReadFile(path)
		if err != nil {
			t.Skipf("the npm package is not installed (%v)", err)
		}
		if !regexp.MustCompile(`replaceOnChanges:\s*\["triggers\[\*\]"\]`).Match(b) {
			t.Errorf("%s no longer adds replaceOnChanges [\"triggers[*]\"]; engineReplaces needs updating", path)
		}
	}
}

func TestDiffNoChange(t *testing.T) {
	resp := diffVia(t, remoteURN, baseRemoteInputs(), baseRemoteInputs())
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE || len(resp.GetDetailedDiff()) != 0 {
		t.Fatalf("want no diff, got %v", resp)
	}
	// Null and absent are the same thing.
	news := baseRemoteInputs()
	news["dir"] = resource.NewNullProperty()
	if resp := diffVia(t, remoteURN, baseRemoteInputs(), news); resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("null vs absent should not differ: %v", resp)
	}
}

func TestDiffPropertyClasses(t *testing.T) {
	cases := []struct {
		name    string
		change  func(m resource.PropertyMap)
		path    string // detailed-diff key
		kind    pulumirpc.PropertyDiff_Kind
		replace bool // in the engine, with the SDK's replaceOnChanges
	}{
		{"create", func(m resource.PropertyMap) { m["create"] = str("echo other") }, "create", pulumirpc.PropertyDiff_UPDATE, false},
		{"update", func(m resource.PropertyMap) { m["update"] = str("echo u2") }, "update", pulumirpc.PropertyDiff_UPDATE, false},
		{"delete", func(m resource.PropertyMap) { m["delete"] = str("echo d2") }, "delete", pulumirpc.PropertyDiff_UPDATE, false},
		{"environment value", func(m resource.PropertyMap) {
			m["environment"] = obj(map[string]resource.PropertyValue{"A": str("2")})
		}, "environment.A", pulumirpc.PropertyDiff_UPDATE, false},
		{"environment entry added", func(m resource.PropertyMap) {
			m["environment"] = obj(map[string]resource.PropertyValue{"A": str("1"), "B": str("2")})
		}, "environment.B", pulumirpc.PropertyDiff_ADD, false},
		{"stdin removed", func(m resource.PropertyMap) { delete(m, "stdin") }, "stdin", pulumirpc.PropertyDiff_DELETE, false},
		{"logging", func(m resource.PropertyMap) { m["logging"] = str("none") }, "logging", pulumirpc.PropertyDiff_UPDATE, false},
		{"addPreviousOutputInEnv added", func(m resource.PropertyMap) {
			m["addPreviousOutputInEnv"] = resource.NewBoolProperty(false)
		}, "addPreviousOutputInEnv", pulumirpc.PropertyDiff_ADD, false},
		// The connection is secret: it is compared as one value.
		{"connection perDialTimeout", func(m resource.PropertyMap) {
			c := m["connection"].SecretValue().Element.ObjectValue().Copy()
			c["perDialTimeout"] = num(9)
			m["connection"] = secret(resource.NewObjectProperty(c))
		}, "connection", pulumirpc.PropertyDiff_UPDATE, false},
		{"connection unknown", func(m resource.PropertyMap) { m["connection"] = unknown() },
			"connection", pulumirpc.PropertyDiff_UPDATE, false},
		{"stdin became secret", func(m resource.PropertyMap) { m["stdin"] = secret(str("in")) },
			"stdin", pulumirpc.PropertyDiff_UPDATE, false},
		// triggers: the provider marks a change of the whole property as a replacement; a
		// changed element is reported as such and replaced by the engine (replaceOnChanges).
		{"trigger element changed", func(m resource.PropertyMap) {
			m["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{str("t2")})
		}, "triggers[0]", pulumirpc.PropertyDiff_UPDATE, true},
		{"trigger element added", func(m resource.PropertyMap) {
			m["triggers"] = resource.NewArrayProperty([]resource.PropertyValue{str("t1"), str("t2")})
		}, "triggers[1]", pulumirpc.PropertyDiff_ADD, true},
		{"triggers unknown", func(m resource.PropertyMap) { m["triggers"] = unknown() },
			"triggers", pulumirpc.PropertyDiff_UPDATE_REPLACE, true},
		{"triggers removed", func(m resource.PropertyMap) { delete(m, "triggers") },
			"triggers", pulumirpc.PropertyDiff_DELETE_REPLACE, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			news := baseRemoteInputs()
			tc.change(news)
			resp := diffVia(t, remoteURN, baseRemoteInputs(), news)
			if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_SOME {
				t.Fatalf("want DIFF_SOME, got %v", resp)
			}
			if len(resp.GetDetailedDiff()) != 1 {
				t.Fatalf("want exactly one changed path, got %v", resp.GetDetailedDiff())
			}
			d := resp.GetDetailedDiff()[tc.path]
			if d == nil || d.GetKind() != tc.kind || d.GetInputDiff() {
				t.Fatalf("detailed diff for %s = %v, want %v (upstream's is not an input diff)", tc.path, d, tc.kind)
			}
			head, _ := resource.ParsePropertyPath(tc.path)
			if diffs := resp.GetDiffs(); len(diffs) != 1 || diffs[0] != head[0] {
				t.Fatalf("diffs = %v, want [%v]", diffs, head[0])
			}
			if got := engineReplaces(t, resp, sdkReplaceOnChanges); got != tc.replace {
				t.Fatalf("replace = %v, want %v (replaces %v)", got, tc.replace, resp.GetReplaces())
			}
			if resp.GetDeleteBeforeReplace() {
				t.Fatal("deleteBeforeReplace is the engine's option, not the provider's")
			}
		})
	}
}

// A change of triggers alone replaces the resource; any other change alone does not.
func TestDiffOnlyTriggersReplace(t *testing.T) {
	base := baseRemoteInputs()
	for k := range base {
		news := base.Copy()
		if k == "triggers" {
			news[k] = resource.NewArrayProperty([]resource.PropertyValue{str("t1-changed")})
		} else {
			news[k] = str("changed")
		}
		resp := diffVia(t, remoteURN, base, news)
		if got := engineReplaces(t, resp, sdkReplaceOnChanges); got != (k == "triggers") {
			t.Errorf("%s changed: replace = %v (%v)", k, got, resp)
		}
	}
}

func TestDiffLocalAndMultipleKeys(t *testing.T) {
	olds := props(map[string]resource.PropertyValue{"create": str("a"), "dir": str("/tmp")})
	news := props(map[string]resource.PropertyValue{"create": str("b"), "interpreter": resource.NewArrayProperty(
		[]resource.PropertyValue{str("/bin/bash"), str("-c")})})
	resp := diffVia(t, localURN, olds, news)
	var keys []string
	for k := range resp.GetDetailedDiff() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) != 3 || keys[0] != "create" || keys[1] != "dir" || keys[2] != "interpreter" {
		t.Fatalf("changed keys = %v", keys)
	}
	if resp.GetDetailedDiff()["interpreter"].GetKind() != pulumirpc.PropertyDiff_ADD ||
		resp.GetDetailedDiff()["dir"].GetKind() != pulumirpc.PropertyDiff_DELETE {
		t.Fatalf("kinds: %v", resp.GetDetailedDiff())
	}
	if d := resp.GetDiffs(); len(d) != 3 {
		t.Fatalf("diffs: %v", d)
	}
}

func TestDiffIgnoreChangesUsesStoredValue(t *testing.T) {
	news := baseRemoteInputs()
	news["create"] = str("echo ignored change")
	if resp := diffVia(t, remoteURN, baseRemoteInputs(), news, "create"); resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("an ignored change must not show: %v", resp)
	}
}

func TestDiffFallsBackToStateWithoutOldInputs(t *testing.T) {
	p, _ := testProvider()
	state := baseRemoteInputs()
	state["stdout"] = str("x")
	state["stderr"] = str("y")
	resp, err := p.Diff(context.Background(), &pulumirpc.DiffRequest{
		Urn: remoteURN, Olds: toStruct(t, state), News: toStruct(t, baseRemoteInputs())})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetChanges() != pulumirpc.DiffResponse_DIFF_NONE {
		t.Fatalf("outputs in the state must not count as a diff: %v", resp)
	}
}

// In an update's preview, stdout and stderr are not known yet when an input changed or is not
// known; an input the stored state did not have does not count (as in upstream's preview).
func TestUpdatePreviewOutputs(t *testing.T) {
	p, _ := testProvider()
	olds := baseRemoteInputs()
	state := olds.Copy()
	state["stdout"] = str("old out")
	state["stderr"] = str("old err")
	for _, tc := range []struct {
		name    string
		change  func(resource.PropertyMap)
		unknown bool
	}{
		{"connection unknown", func(m resource.PropertyMap) { m["connection"] = unknown() }, true},
		{"delete changed", func(m resource.PropertyMap) { m["delete"] = str("echo new") }, true},
		{"logging changed", func(m resource.PropertyMap) { m["logging"] = str("none") }, true},
		{"update unknown", func(m resource.PropertyMap) { m["update"] = unknown() }, true},
		{"input removed", func(m resource.PropertyMap) { delete(m, "stdin") }, true},
		{"new input added", func(m resource.PropertyMap) { m["addPreviousOutputInEnv"] = resource.NewBoolProperty(true) }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			news := olds.Copy()
			tc.change(news)
			resp, err := p.Update(context.Background(), &pulumirpc.UpdateRequest{Urn: remoteURN, Preview: true,
				Olds: toStruct(t, state), OldInputs: toStruct(t, olds), News: toStruct(t, news)})
			if err != nil {
				t.Fatal(err)
			}
			out := fromStruct(t, resp.GetProperties())
			if got := out["stdout"].IsComputed(); got != tc.unknown {
				t.Fatalf("stdout unknown = %v, want %v (%v)", got, tc.unknown, out["stdout"])
			}
			if !tc.unknown && (out["stdout"].StringValue() != "old out" || out["stderr"].StringValue() != "old err") {
				t.Fatalf("previous outputs not kept: %v", out)
			}
			if !out["connection"].ContainsSecrets() && !out["connection"].ContainsUnknowns() {
				t.Fatalf("connection not secret: %v", out["connection"])
			}
		})
	}
}
