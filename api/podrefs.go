package api

import corralpb "github.com/corral-dev/corral/proto"

// PodConfigMaps lists the names of the ConfigMaps a pod uses (in its own
// namespace): configMap volumes, env valueFrom.configMapKeyRef and
// envFrom.configMapRef of its init and app containers, each once, in the
// order the pod names them.
func PodConfigMaps(pod *corralpb.Pod) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, v := range pod.GetSpec().GetVolumes() {
		add(v.GetConfigMap().GetName())
	}
	for _, cs := range [][]*corralpb.Container{pod.GetSpec().GetInitContainers(), pod.GetSpec().GetContainers()} {
		for _, c := range cs {
			for _, e := range c.GetEnv() {
				add(e.GetValueFrom().GetConfigMapKeyRef().GetName())
			}
			for _, e := range c.GetEnvFrom() {
				add(e.GetConfigMapRef().GetName())
			}
		}
	}
	return out
}
