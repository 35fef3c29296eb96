// Command initbin is the smallest program that carries the container init:
// the tests build it static and run it as "initbin container-init -- ...".
package main

import _ "github.com/corral-dev/corral/nodeagent/runtime/containerinit"

func main() {}
