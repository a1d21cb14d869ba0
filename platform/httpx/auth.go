package httpx

import (
	"crypto/sha256"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// Scopes used across services. A token with "*" has every scope.
const (
	ScopeAll     = "*"
	ScopeRead    = "read"
	ScopeWrite   = "write"
	ScopeIngest  = "ingest"
	ScopePromote = "promote"
	ScopeAdmin   = "admin"
)

// Tokens maps bearer tokens to their scopes. Tokens are kept only as SHA-256 digests so a
// heap dump or a logged struct never shows them.
type Tokens struct {
	scopes map[[32]byte][]string
}

// ParseTokens reads "token:scope,scope;token2:*". An empty spec means auth is disabled.
func ParseTokens(spec string) (Tokens, error) {
	t := Tokens{scopes: map[[32]byte][]string{}}
	for entry := range strings.SplitSeq(spec, ";") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		token, scopeList, ok := strings.Cut(entry, ":")
		if !ok || token == "" || scopeList == "" {
			return Tokens{}, fmt.Errorf("entry %d has no token:scopes form", len(t.scopes)+1)
		}
		var scopes []string
		for s := range strings.SplitSeq(scopeList, ",") {
			if s = strings.TrimSpace(s); s != "" {
				scopes = append(scopes, s)
			}
		}
		t.scopes[sha256.Sum256([]byte(token))] = scopes
	}
	return t, nil
}

// Enabled reports whether any token is configured; without tokens every request is allowed.
func (t Tokens) Enabled() bool { return len(t.scopes) > 0 }

// Allow reports whether the request's bearer token grants scope, and the status to answer
// when it does not (401 without a known token, 403 with a token lacking the scope).
func (t Tokens) Allow(r *http.Request, scope string) (int, bool) {
	if !t.Enabled() || scope == "" {
		return http.StatusOK, true
	}
	auth := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || token == "" {
		return http.StatusUnauthorized, false
	}
	scopes, known := t.scopes[sha256.Sum256([]byte(token))]
	if !known {
		return http.StatusUnauthorized, false
	}
	if slices.Contains(scopes, ScopeAll) || slices.Contains(scopes, scope) {
		return http.StatusOK, true
	}
	return http.StatusForbidden, false
}

// TokenID names the request's bearer token without revealing it ("token:1a2b3c4d", the
// start of its SHA-256), for audit trails; "" without a token.
func TokenID(r *http.Request) string {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || token == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(token))
	return fmt.Sprintf("token:%x", sum[:4])
}
