// Package image is the node agent's image store: it pulls images from OCI and Docker
// registries (through mirrors, with credentials), imports `docker save` and OCI layout
// archives for air-gapped nodes, unpacks each layer once, gives every container an
// overlayfs root filesystem over its image's layers, and garbage-collects images when
// the disk fills.
//
// # On disk
//
// Everything lives under one directory, DATA_DIR/images by convention:
//
//	index.json                 images, references, layers, container claims, imports
//	blobs/sha256/<hex>         manifests and configs, by digest
//	layers/sha256/<hex>/       one unpacked layer per DiffID, an overlayfs lower dir
//	containers/<id>/rootfs     the container's overlay mount point
//	containers/<id>/upper      its writable layer (and work/, overlayfs's scratch dir)
//	tmp/                       unpacks and imports in progress; emptied by Open
//	empty/                     the lower dir of an image without layers
//
// index.json is rewritten whole, atomically (temp file, fsync, rename, fsync of the
// directory), after every change. Images are keyed by ID, the config digest, as Docker
// does: a `docker save` archive carries no registry manifest, yet the same image
// imported and later pulled is one image. References map canonical names (as
// ParseReference prints them: "index.docker.io/library/nginx:1.25",
// "registry.k8s.io/kube-proxy@sha256:...") to IDs; a pull also records the repository's
// digest references, so a later pull by digest finds the image without the network.
//
// # Layers: one directory per layer, whiteouts in overlayfs's format
//
// Layers are unpacked once per DiffID (the digest of the uncompressed tar, so a layer
// pulled gzipped and the same layer imported uncompressed share one directory) into
// their own directory, and a container's overlay stacks its image's layer directories
// as lower dirs. The alternative, flattening each image with mutate.Extract into a
// single lower dir, would be simpler to unpack, but it stores every byte once per image
// instead of once per layer: images built on one base (the lab's stand-ins, the seed's
// workloads, every new tag of an app) share most of their bytes, and re-pulling a new
// tag would rewrite the whole image instead of its top layer. Per-layer directories
// need whiteouts that overlayfs understands, since a layer's deletions must hide files
// of the lower dirs at mount time: an OCI whiteout ".wh.name" becomes a character device
// 0/0 named "name", and an opaque marker ".wh..wh..opq" sets the xattr
// trusted.overlay.opaque=y on its directory. Both need root (mknod of a device,
// trusted.* xattrs), which the agent is.
//
// The untar resolves every entry's parent directory inside the layer root, following
// symlinks as if the root were "/" (an absolute target restarts at the root, ".." stops
// there), and never follows an entry's own last component. Entry names and hard link
// targets that climb out of the root are refused (ErrPathEscape); hard links must point
// into the same layer. Modes (setuid, setgid, sticky included), ownership, symlinks,
// hard links, device nodes, FIFOs, times and xattrs are kept, except trusted.overlay.*
// xattrs, which a layer does not get to set.
//
// An unpack goes to tmp/, its tar stream is checked against the DiffID, the filesystem
// is synced, then the directory is renamed into layers/ and recorded: a crash leaves
// either nothing or a complete layer. Open empties tmp/, adopts complete layer
// directories that were not recorded yet, and forgets images whose layers are missing.
//
// # Pulls
//
// Pull follows imagePullPolicy: Never uses only local images (ErrImageNeverPull);
// IfNotPresent goes to the network only for an unknown reference; Always resolves the
// manifest at the registry every time but fetches only layers it lacks. Concurrent
// pulls of one reference (with the same credentials) share one fetch, and per-layer
// locks make two images that share a layer unpack it once. From a multi-arch index the
// manifest for linux/GOARCH is picked.
//
// Endpoints come from the registries config (K3s's registries.yaml): the registry's own
// mirror entry, or the "*" entry for registries without one, lists endpoints tried in
// order; then the registry itself is tried, unless Options.DisableDefaultEndpoint is set
// or a mirror endpoint is that very host. A mirror receives the image's repository path
// ("library/nginx" for Docker Hub images) after its rewrite rules, and the image is
// recorded under its original name. http:// endpoints are spoken to in plain HTTP, and
// go-containerregistry also falls back to plain HTTP for loopback and private-range
// registries. Mirrors use the credentials and TLS settings of their own host in
// "configs"; the upstream registry uses the caller's credentials (the pod's pull
// secret) or else its "configs" entry.
//
// A failed pull is a *PullError with the kubelet's reason (ErrImagePull,
// ErrImageNeverPull, InvalidImageName) and every endpoint's error, registry messages
// included; it matches ErrNotFound or ErrUnauthorized when an endpoint said so, the
// first such answer winning over network errors of the others.
//
// # Containers and garbage collection
//
// Mount claims an image for a container (recorded in the index, so it survives agent
// restarts) and mounts overlayfs with the new mount API, adding lower dirs one by one
// (no limit on layer count); kernels before 6.8 fall back to mount(2). Mounting a
// mounted container is a no-op, so a restarted agent re-adopts running containers.
// GC follows the kubelet's image GC: above the high threshold, remove images that no
// container claims and the caller does not name, least recently used first, until the
// bytes freed reach what the low threshold asks for; layers no image uses go first.
package image
