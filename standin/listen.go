package standin

// TestListen is test/workload's default: one port.
const TestListen = ":8080"

// LabListen is the corral binary's default as a stand-in: the container
// ports the seed's manifests use (nginx 80, node-exporter 9100) and 8080.
const LabListen = ":80,:8080,:9100"

// EnvVar is the environment variable that makes the corral binary run as
// the stand-in ("1") instead of as corral.
const EnvVar = "CORRAL_STANDIN"
