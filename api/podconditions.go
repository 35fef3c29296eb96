package api

import corralpb "github.com/corral-dev/corral/proto"

// PodCondition returns the condition of type typ ("Ready", "Initialized")
// in a pod's status, or nil when the status has none.
func PodCondition(st *corralpb.PodStatus, typ string) *corralpb.PodCondition {
	for _, c := range st.GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}
