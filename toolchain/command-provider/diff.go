package main

// Diff, shaped like the one upstream gets from pulumi-go-provider's infer package: the old inputs
// are compared with the new ones as a whole, the detailed diff names nested paths
// ("environment.A", "triggers[0]"), and only the top-level `triggers` property is marked as a
// replacement by the provider itself. Changes inside the triggers array ("triggers[0]") become
// replacements in the engine, through the replaceOnChanges: ["triggers[*]"] option that the
// @pulumi/command SDK adds to every Command.

import (
	"sort"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"
	pulumirpc "github.com/pulumi/pulumi/sdk/v3/proto/go"
)

func isNullValue(v resource.PropertyValue) bool {
	inner, _, unknown := peel(v)
	return !unknown && inner.IsNull()
}

// inputsOnly drops the provider-computed outputs from a stored state, leaving its inputs.
func inputsOnly(m resource.PropertyMap) resource.PropertyMap {
	out := resource.PropertyMap{}
	for k, v := range m {
		if !outputOnly[string(k)] {
			out[k] = v
		}
	}
	return out
}

// replaceOnChange reports whether a change of the top-level input key replaces the resource.
func replaceOnChange(key string) bool { return key == pTriggers }

// diffInputs compares the previous inputs with the new ones. state is the stored state: an
// ignored property takes its value from there.
func diffInputs(olds, state, news resource.PropertyMap, ignoreChanges []string) *pulumirpc.DiffResponse {
	news = news.Copy()
	for _, k := range ignoreChanges {
		if v, ok := state[resource.PropertyKey(k)]; ok {
			news[resource.PropertyKey(k)] = v
		}
	}
	for k := range news {
		if k == "version" || strings.HasPrefix(string(k), "__") {
			delete(news, k)
		}
	}

	resp := &pulumirpc.DiffResponse{
		Changes:         pulumirpc.DiffResponse_DIFF_NONE,
		DetailedDiff:    map[string]*pulumirpc.PropertyDiff{},
		HasDetailedDiff: true,
	}
	objDiff := olds.Diff(news)
	if objDiff == nil || !objDiff.AnyChanges() {
		return resp
	}
	resp.Changes = pulumirpc.DiffResponse_DIFF_SOME
	diffs, replaces := map[string]bool{}, map[string]bool{}
	for path, d := range plugin.NewDetailedDiffFromObjectDiff(objDiff, false) {
		head := path
		if pp, err := resource.ParsePropertyPath(path); err == nil && len(pp) > 0 {
			if s, ok := pp[0].(string); ok {
				head = s
			}
		}
		kind := d.Kind
		if replaceOnChange(path) {
			kind = kind.AsReplace()
		}
		diffs[head] = true
		if kind.IsReplace() {
			replaces[head] = true
		}
		resp.DetailedDiff[path] = &pulumirpc.PropertyDiff{Kind: rpcDiffKind(kind), InputDiff: d.InputDiff}
	}
	resp.Diffs = sortedSet(diffs)
	resp.Replaces = sortedSet(replaces)
	return resp
}

func rpcDiffKind(k plugin.DiffKind) pulumirpc.PropertyDiff_Kind {
	switch k {
	case plugin.DiffAdd:
		return pulumirpc.PropertyDiff_ADD
	case plugin.DiffAddReplace:
		return pulumirpc.PropertyDiff_ADD_REPLACE
	case plugin.DiffDelete:
		return pulumirpc.PropertyDiff_DELETE
	case plugin.DiffDeleteReplace:
		return pulumirpc.PropertyDiff_DELETE_REPLACE
	case plugin.DiffUpdateReplace:
		return pulumirpc.PropertyDiff_UPDATE_REPLACE
	}
	return pulumirpc.PropertyDiff_UPDATE
}

func sortedSet(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// outputsChangeInPreview decides whether an update's preview shows stdout and stderr as not
// known yet: so it is when an input is not known yet or differs from its value in the stored
// state. (An input the state did not have does not count, as in upstream's preview.)
func outputsChangeInPreview(kind resourceKind, state, news resource.PropertyMap) bool {
	for _, k := range inputKeys(kind) {
		n, nOK := news[resource.PropertyKey(k)]
		if nOK && n.ContainsUnknowns() {
			return true
		}
		o, oOK := state[resource.PropertyKey(k)]
		if oOK && !n.DeepEquals(o) {
			return true
		}
	}
	return false
}
