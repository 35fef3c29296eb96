package probe

import (
	"errors"
	"fmt"
	"strconv"

	corralpb "github.com/corral-dev/corral/proto"
)

// ErrPort is wrapped by ResolvePort's errors.
var ErrPort = errors.New("probe port")

// ResolvePort returns the port number a probe's port means for container
// c: a number is itself; a name is the containerPort of c's port with that
// name, or failing that a number written as a string, as kubelet does. The
// result must be in 1-65535.
func ResolvePort(port *corralpb.IntOrString, c *corralpb.Container) (int, error) {
	if port == nil {
		return 0, fmt.Errorf("%w: no port given", ErrPort)
	}
	n := int(port.GetIntVal())
	if port.GetIsString() {
		name := port.GetStrVal()
		found := false
		for _, p := range c.GetPorts() {
			if p.GetName() == name {
				n, found = int(p.GetContainerPort()), true
				break
			}
		}
		if !found {
			v, err := strconv.Atoi(name)
			if err != nil {
				return 0, fmt.Errorf("%w: couldn't find port %q in container %q", ErrPort, name, c.GetName())
			}
			n = v
		}
	}
	if n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%w: invalid port number: %d", ErrPort, n)
	}
	return n, nil
}
