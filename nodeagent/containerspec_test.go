package nodeagent

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/corral-dev/corral/nodeagent/image"
	corralpb "github.com/corral-dev/corral/proto"
)

func TestResolveCommand(t *testing.T) {
	img := image.Config{Entrypoint: []string{"/entry"}, Cmd: []string{"default"}}
	env := map[string]string{"NAME": "x"}
	for _, tc := range []struct {
		name          string
		command, args []string
		want          []string
	}{
		{"image defaults", nil, nil, []string{"/entry", "default"}},
		{"command replaces both", []string{"/bin/run"}, nil, []string{"/bin/run"}},
		{"args replace cmd", nil, []string{"--flag"}, []string{"/entry", "--flag"}},
		{"both replace both", []string{"/bin/run"}, []string{"a"}, []string{"/bin/run", "a"}},
		{"expansion", []string{"echo", "$(NAME)", "$(MISSING)", "$$(NAME)"}, nil, []string{"echo", "x", "$(MISSING)", "$(NAME)"}},
	} {
		got := resolveCommand(&corralpb.Container{Command: tc.command, Args: tc.args}, img, env)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestContainerEnv(t *testing.T) {
	pod := &corralpb.Pod{
		Metadata: &corralpb.ObjectMeta{Name: "p", Namespace: "ns", Uid: "u1", Labels: map[string]string{"app": "web"}},
		Spec:     &corralpb.PodSpec{NodeName: "n1"},
	}
	cms := func(ns, name string) (*corralpb.ConfigMap, bool) {
		if ns == "ns" && name == "conf" {
			return &corralpb.ConfigMap{Data: map[string]string{"level": "debug", "mode": "fast"}}, true
		}
		return nil, false
	}
	c := &corralpb.Container{
		EnvFrom: []*corralpb.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corralpb.ConfigMapEnvSource{Name: "conf"}}},
		Env: []*corralpb.EnvVar{
			{Name: "POD", ValueFrom: &corralpb.EnvVarSource{FieldRef: &corralpb.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NODE", ValueFrom: &corralpb.EnvVarSource{FieldRef: &corralpb.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "HOST_IP", ValueFrom: &corralpb.EnvVarSource{FieldRef: &corralpb.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
			{Name: "APP", ValueFrom: &corralpb.EnvVarSource{FieldRef: &corralpb.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
			{Name: "LEVEL", ValueFrom: &corralpb.EnvVarSource{ConfigMapKeyRef: &corralpb.ConfigMapKeySelector{Name: "conf", Key: "level"}}},
			{Name: "GREETING", Value: "hello $(POD)"},
			{Name: "PATH", Value: "/custom"},
			{Name: "MEM", ValueFrom: &corralpb.EnvVarSource{ResourceFieldRef: &corralpb.ResourceFieldSelector{Resource: "limits.memory", Divisor: "1Mi"}}},
		},
		Resources: &corralpb.ResourceRequirements{Limits: map[string]string{"memory": "200Mi"}},
	}
	env, _, err := containerEnv(pod, c, image.Config{Env: []string{"PATH=/usr/bin", "IMG=1"}},
		podEnv{nodeIP: "10.0.0.7", configMaps: cms})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"PATH=/custom", "IMG=1", "CFG_level=debug", "CFG_mode=fast", "POD=p", "NODE=n1", "HOST_IP=10.0.0.7",
		"APP=web", "LEVEL=debug", "GREETING=hello p", "MEM=200"}
	if !slices.Equal(env, want) {
		t.Fatalf("env\n%q\nwant\n%q", env, want)
	}
	missing := &corralpb.Container{Env: []*corralpb.EnvVar{{Name: "X", ValueFrom: &corralpb.EnvVarSource{
		ConfigMapKeyRef: &corralpb.ConfigMapKeySelector{Name: "nope", Key: "k"}}}}}
	if _, _, err := containerEnv(pod, missing, image.Config{}, podEnv{configMaps: cms}); err == nil || err.Error() != `configmap "nope" not found` {
		t.Fatalf("missing config map: %v", err)
	}
	badKey := &corralpb.Container{Env: []*corralpb.EnvVar{{Name: "X", ValueFrom: &corralpb.EnvVarSource{
		ConfigMapKeyRef: &corralpb.ConfigMapKeySelector{Name: "conf", Key: "nokey"}}}}}
	if _, _, err := containerEnv(pod, badKey, image.Config{}, podEnv{configMaps: cms}); err == nil || err.Error() != "couldn't find key nokey in ConfigMap ns/conf" {
		t.Fatalf("missing key: %v", err)
	}
}

func TestContainerResources(t *testing.T) {
	r := containerResources(&corralpb.Container{Resources: &corralpb.ResourceRequirements{
		Requests: map[string]string{"cpu": "100m", "memory": "128Mi"},
		Limits:   map[string]string{"cpu": "200m", "memory": "256Mi"},
	}})
	if r.CPUShares != 102 || r.CPUQuota != 20000 || r.CPUPeriod != 100000 || r.MemoryLimit != 256<<20 {
		t.Fatalf("resources %+v", r)
	}
	if r := containerResources(&corralpb.Container{}); r.CPUShares != 2 || r.CPUQuota != 0 || r.MemoryLimit != 0 {
		t.Fatalf("no resources: %+v", r)
	}
}

func TestContainerUser(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("root:x:0:0::/root:/bin/sh\nnobody:x:65534:65534::/:/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	uid := int64(1000)
	gid := int64(2000)
	pod := &corralpb.Pod{Spec: &corralpb.PodSpec{SecurityContext: &corralpb.PodSecurityContext{SupplementalGroups: []int64{7}}}}
	for _, tc := range []struct {
		name      string
		csc       *corralpb.SecurityContext
		imageUser string
		uid, gid  uint32
		err       bool
	}{
		{"root by default", nil, "", 0, 0, false},
		{"image numeric", nil, "33:44", 33, 44, false},
		{"image name", nil, "nobody", 65534, 65534, false},
		{"image name and group", nil, "nobody:staff", 65534, 50, false},
		{"runAsUser wins", &corralpb.SecurityContext{RunAsUser: &uid, RunAsGroup: &gid}, "nobody", 1000, 2000, false},
		{"unknown name", nil, "ghost", 0, 0, true},
	} {
		u, err := containerUser(pod, &corralpb.Container{SecurityContext: tc.csc}, tc.imageUser, root)
		if (err != nil) != tc.err {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if err == nil && (u.UID != tc.uid || u.GID != tc.gid || !slices.Equal(u.AdditionalGIDs, []uint32{7})) {
			t.Errorf("%s: user %+v, want %d:%d +[7]", tc.name, u, tc.uid, tc.gid)
		}
	}
}
