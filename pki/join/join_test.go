package join

import (
	"strings"
	"testing"
	"time"

	"github.com/corral-dev/corral/pki"
)

// Check accepts only a certificate of this CA, for this key and identity,
// not yet expired: what a joining machine must verify in a server's answer.
func TestCheck(t *testing.T) {
	ca, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	other, err := pki.NewCA(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	id := pki.Identity{Role: pki.RoleNode, Name: "w1"}
	secret := pki.NewSecret()
	req, err := NewRequest(id, pki.Token{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(c *pki.CA, as pki.Identity, validity time.Duration) []byte {
		t.Helper()
		certPEM, err := c.SignCSR(req.Req.GetCsr(), as, time.Now(), validity)
		if err != nil {
			t.Fatal(err)
		}
		return certPEM
	}
	if _, err := Check(ca, sign(ca, id, time.Hour), req.Key.Public(), id, time.Now()); err != nil {
		t.Fatalf("a good certificate: %v", err)
	}
	otherKey, _ := pki.NewKey()
	for name, tc := range map[string]struct {
		certPEM []byte
		pub     any
		want    string
	}{
		"another CA":       {sign(other, id, time.Hour), req.Key.Public(), "not signed by the cluster CA"},
		"another identity": {sign(ca, pki.Identity{Role: pki.RoleNode, Name: "w2"}, time.Hour), req.Key.Public(), "issued to system:node:w2"},
		"another role":     {sign(ca, pki.Identity{Role: pki.RoleServer, Name: "w1"}, time.Hour), req.Key.Public(), "issued to"},
		"another key":      {sign(ca, id, time.Hour), otherKey.Public(), "not for this key"},
		"expired":          {sign(ca, id, -time.Minute), req.Key.Public(), "expired"},
	} {
		if _, err := Check(ca, tc.certPEM, tc.pub, id, time.Now()); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", name, err, tc.want)
		}
	}
	// The request proves the token's secret over its own CSR, and only it.
	if !pki.CheckMAC(secret, Purpose, req.Req.GetCsr(), req.Req.GetMac()) {
		t.Error("the request's MAC does not prove the token's secret")
	}
	if pki.CheckMAC(pki.NewSecret(), Purpose, req.Req.GetCsr(), req.Req.GetMac()) {
		t.Error("the request's MAC proves another secret")
	}
	if req.Req.GetRole() != "node" || req.Req.GetName() != "w1" {
		t.Errorf("request for %s %s", req.Req.GetRole(), req.Req.GetName())
	}
}
