package config

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEListsEverySetting keeps the README's configuration table true:
// every environment variable and YAML key Keygate reads is documented.
func TestREADMEListsEverySetting(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	readme := string(b)
	for _, s := range Settings() {
		for _, name := range append([]string{s.Env, s.YAMLKey}, s.Aliases...) {
			if name != "" && !strings.Contains(readme, "`"+name+"`") {
				t.Errorf("README.md does not document %s", name)
			}
		}
	}
}
