package cli

import (
	"testing"

	corralpb "github.com/corral-dev/corral/proto"
)

// kubectl diff's file names: GROUP.VERSION.KIND.NAMESPACE.NAME, the group
// left out for the core group.
func TestDiffFileName(t *testing.T) {
	for _, tc := range []struct {
		obj  *corralpb.Object
		want string
	}{
		{objs(seedDaemonSet())[0], "apps.v1.DaemonSet.default.nginx-daemonset"},
		{objs(testNode("node1", true, nil))[0], "v1.Node..node1"},
		{objs(&corralpb.PriorityClass{Metadata: &corralpb.ObjectMeta{Name: "high"}})[0], "scheduling.k8s.io.v1.PriorityClass..high"},
	} {
		if got := diffFileName(tc.obj); got != tc.want {
			t.Errorf("diffFileName = %q, want %q", got, tc.want)
		}
	}
}
