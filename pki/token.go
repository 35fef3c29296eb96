package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Token is a join token: CRL1::ROLE::CAHASH::SECRET. A bare secret (the
// shared token servers bootstrap a new cluster with) parses as a Token
// with only Secret set: it pins no CA.
type Token struct {
	// Role is "agent" or "server".
	Role string
	// CAHash is the hex SHA-256 of the CA certificate, or "" for a bare
	// secret.
	CAHash string
	Secret string
}

// Token roles.
const (
	TokenAgent  = "agent"
	TokenServer = "server"
)

const tokenPrefix = "CRL1"

// MinSecretLen is the shortest secret a token may have: 128 bits as hex.
const MinSecretLen = 32

var hexDigest = regexp.MustCompile(`^[0-9a-f]{64}$`)

// String formats the token.
func (t Token) String() string {
	if t.CAHash == "" {
		return t.Secret
	}
	return strings.Join([]string{tokenPrefix, t.Role, t.CAHash, t.Secret}, "::")
}

// ParseToken reads a join token, or a bare secret.
func ParseToken(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, tokenPrefix+"::") {
		if len(s) < MinSecretLen || strings.ContainsAny(s, " \t\n:") {
			return Token{}, fmt.Errorf("join token: want CRL1::ROLE::CAHASH::SECRET (corral token show) or a shared secret of at least %d characters without spaces or colons", MinSecretLen)
		}
		return Token{Secret: s}, nil
	}
	parts := strings.Split(s, "::")
	if len(parts) != 4 {
		return Token{}, errors.New("join token: want CRL1::ROLE::CAHASH::SECRET")
	}
	t := Token{Role: parts[1], CAHash: parts[2], Secret: parts[3]}
	if t.Role != TokenAgent && t.Role != TokenServer {
		return Token{}, fmt.Errorf("join token: role %q is neither agent nor server", t.Role)
	}
	if !hexDigest.MatchString(t.CAHash) {
		return Token{}, errors.New("join token: the CA hash is not a hex SHA-256")
	}
	if len(t.Secret) < MinSecretLen {
		return Token{}, errors.New("join token: the secret is too short")
	}
	return t, nil
}

// NewSecret makes a random token secret (128 bits, hex).
func NewSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// MAC proves knowledge of secret for data without revealing it.
func MAC(secret, purpose string, data []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("corral " + purpose + "\x00"))
	m.Write(data)
	return m.Sum(nil)
}

// CheckMAC reports whether mac is MAC(secret, purpose, data), in constant time.
func CheckMAC(secret, purpose string, data, mac []byte) bool {
	return hmac.Equal(MAC(secret, purpose, data), mac)
}

// Seal encrypts and authenticates plaintext with a key derived from secret
// (HKDF-SHA256, AES-256-GCM): only a holder of the secret can open it, or
// make something that opens.
func Seal(secret, purpose string, plaintext []byte) ([]byte, error) {
	aead, err := sealer(secret, purpose)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	_, _ = rand.Read(nonce) // never fails
	return aead.Seal(nonce, nonce, plaintext, []byte(purpose)), nil
}

// ErrSealBroken means a sealed message was not made with the same secret.
var ErrSealBroken = errors.New("sealed message does not open with this secret (wrong token, or not a server of this cluster)")

// Open decrypts what Seal made with the same secret and purpose.
func Open(secret, purpose string, sealed []byte) ([]byte, error) {
	aead, err := sealer(secret, purpose)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, ErrSealBroken
	}
	out, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], []byte(purpose))
	if err != nil {
		return nil, ErrSealBroken
	}
	return out, nil
}

func sealer(secret, purpose string) (cipher.AEAD, error) {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, "corral seal "+purpose, 32)
	if err != nil {
		return nil, fmt.Errorf("derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("cipher: %w", err)
	}
	return cipher.NewGCM(block)
}
