// Package volume prepares a pod's volumes on the node and turns each
// container's volumeMounts into bind mounts for the runtime.
//
// # Model
//
// A Manager owns one directory per pod under its pods directory:
//
//	<pods>/<podUID>/volumes/empty-dir/<name>    emptyDir (a tmpfs mount when medium is Memory)
//	<pods>/<podUID>/volumes/configmap/<name>    configMap, written by the atomic writer
//	<pods>/<podUID>/volume-subpaths/<volume>/<container>/<index>
//	                                             subPath pins (bind mounts, see below)
//
// hostPath volumes live where they are; Setup only runs Kubernetes' type
// check (creating the directory or file for the *OrCreate types).
//
// Setup is idempotent: the agent calls it before every container start.
// Update rewrites configMap volumes when their ConfigMap changes, and
// TearDown unmounts and removes everything the Manager made for a pod.
//
// # ConfigMap volumes: the atomic writer
//
// As kubelet does, a configMap volume's files live in a timestamped
// directory ("..2026_11_28_12_00_00.123456789"). The symlink "..data" points
// at the current one and each top-level name the user sees is a symlink
// "name -> ..data/name". An update writes a whole new timestamped directory,
// then swaps "..data" with one rename(2), so a reader that goes through
// "..data" sees the old set of files or the new one, never a mix; the old
// directory is removed afterwards.
//
// # subPath
//
// A subPath is resolved inside its volume with openat2(RESOLVE_BENEATH), so
// ".." and symlinks that lead out of the volume are refused, and missing
// directories are created one component at a time the same way (emptyDir
// and hostPath, as kubelet does). The resolved object is then pinned: its
// O_PATH descriptor is bind-mounted onto a private path under
// volume-subpaths, and that path is what the runtime bind-mounts into the
// container. A container that later swaps a directory of its volume for a
// symlink cannot redirect the mount to the host (kubelet's fix for
// CVE-2017-1002101 works the same way). Pinning needs CAP_SYS_ADMIN, as the
// agent has.
//
// Errors from Setup are *SetupError values (joined when several volumes
// fail) whose text is kubelet's FailedMount event message.
package volume
