// Command probe-plugin is a configurable go-plugin gRPC plugin for automated
// tests (checking that a non-Go host negotiates versions like a Go host).
//
// Environment:
//
//	PROBE_VERSIONS      comma list of app protocol versions served (default "1");
//	                    each serves {"kv": gRPC KV}
//	PROBE_COOKIE_KEY    magic cookie key (default "BASIC_PLUGIN")
//	PROBE_COOKIE_VALUE  magic cookie value (default "hello")
//	PROBE_TLS_CERT      manual TLS (ServeConfig.TLSProvider): PEM certificate;
//	PROBE_TLS_KEY       with its PEM key (both or neither)
//	PROBE_TLS_CLIENT_CA PEM CA(s): require and verify a client certificate
//	PROBE_TLS_MAX       "1.2" or "1.3": TLS MaxVersion (manual TLS and AutoMTLS)
//
// Without PROBE_TLS_CERT/KEY, go-plugin turns AutoMTLS on by itself when the
// host sends PLUGIN_CLIENT_CERT. go-plugin has no hook to change that
// tls.Config, so with PROBE_TLS_MAX set the plugin does AutoMTLS itself (see
// autoMTLS below).
//
// The KV stores VALUE + "\n\nWritten from plugin-go-grpc" in kv_KEY in the
// working directory, like kv-plugin-go-grpc.
package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	_ "unsafe" // go:linkname

	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/go-plugin/examples/grpc/shared"
)

// generateCert is go-plugin's own AutoMTLS certificate generator (mtls.go),
// used so that the emulated AutoMTLS sends exactly go-plugin's certificate.
//
//go:linkname generateCert github.com/hashicorp/go-plugin.generateCert
func generateCert() (cert []byte, privateKey []byte, err error)

type fileKV struct{}

func (fileKV) Put(key string, value []byte) error {
	data := append(append([]byte{}, value...), "\n\nWritten from plugin-go-grpc"...)
	return os.WriteFile("kv_"+key, data, 0o644)
}

func (fileKV) Get(key string) ([]byte, error) {
	return os.ReadFile("kv_" + key)
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok {
		return v
	}
	return def
}

func die(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "probe-plugin: "+format+"\n", args...)
	os.Exit(1)
}

// manualTLS is the tls.Config returned by TLSProvider for PROBE_TLS_CERT/KEY.
func manualTLS(certFile, keyFile, clientCAFile string, max uint16) *tls.Config {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		die("PROBE_TLS_CERT/PROBE_TLS_KEY: %v", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   max,
	}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			die("PROBE_TLS_CLIENT_CA: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			die("PROBE_TLS_CLIENT_CA: no PEM certificate in %s", clientCAFile)
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = pool
	}
	return cfg
}

// autoMTLS does go-plugin's plugin-side AutoMTLS itself, with MaxVersion
// set. go-plugin (server.go) builds its AutoMTLS tls.Config only when
// TLSProvider returns nil, and offers no way to change it; when TLSProvider
// returns a config, go-plugin prints an empty field 6. So TLSProvider returns
// the config go-plugin would build (its certificate generator, the same
// fields) plus MaxVersion, and the handshake line that go-plugin prints is
// passed through a pipe that puts our certificate into field 6, as
// RawStdEncoding base64 of the DER, like go-plugin.
func autoMTLS(clientCertPEM string, max uint16) *tls.Config {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(clientCertPEM)) {
		// go-plugin only logs this and carries on with an empty pool.
		fmt.Fprintln(os.Stderr, "probe-plugin: PLUGIN_CLIENT_CERT provided but failed to parse")
	}
	certPEM, keyPEM, err := generateCert()
	if err != nil {
		die("generating the AutoMTLS certificate: %v", err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		die("parsing the AutoMTLS certificate: %v", err)
	}
	cfg := &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS12,
		MaxVersion:   max,
		RootCAs:      pool,
		ServerName:   "localhost",
	}
	field6 := base64.RawStdEncoding.EncodeToString(cert.Certificate[0])

	// go-plugin prints the handshake line with fmt.Printf to os.Stdout
	// (and then replaces os.Stdout with its stdio pipe).
	realStdout := os.Stdout
	r, w, err := os.Pipe()
	if err != nil {
		die("pipe: %v", err)
	}
	os.Stdout = w
	go func() {
		line, err := bufio.NewReader(r).ReadString('\n')
		if err != nil {
			return
		}
		parts := strings.Split(strings.TrimSuffix(line, "\n"), "|")
		if len(parts) >= 6 {
			parts[5] = field6
		}
		io.WriteString(realStdout, strings.Join(parts, "|")+"\n")
		realStdout.Sync()
	}()
	return cfg
}

func main() {
	versions := map[int]plugin.PluginSet{}
	for _, f := range strings.Split(envOr("PROBE_VERSIONS", "1"), ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			fmt.Fprintf(os.Stderr, "probe-plugin: bad version %q in PROBE_VERSIONS\n", f)
			os.Exit(1)
		}
		versions[n] = plugin.PluginSet{"kv": &shared.KVGRPCPlugin{Impl: fileKV{}}}
	}

	var maxVersion uint16
	switch m := os.Getenv("PROBE_TLS_MAX"); m {
	case "":
	case "1.2":
		maxVersion = tls.VersionTLS12
	case "1.3":
		maxVersion = tls.VersionTLS13
	default:
		die("PROBE_TLS_MAX wants 1.2 or 1.3, got %q", m)
	}
	certFile, keyFile := os.Getenv("PROBE_TLS_CERT"), os.Getenv("PROBE_TLS_KEY")
	if (certFile == "") != (keyFile == "") {
		die("PROBE_TLS_CERT and PROBE_TLS_KEY go together")
	}
	var tlsProvider func() (*tls.Config, error)
	switch clientCert := os.Getenv("PLUGIN_CLIENT_CERT"); {
	case certFile != "":
		cfg := manualTLS(certFile, keyFile, os.Getenv("PROBE_TLS_CLIENT_CA"), maxVersion)
		tlsProvider = func() (*tls.Config, error) { return cfg, nil }
	case clientCert != "" && maxVersion != 0:
		// Serve calls TLSProvider after its cookie and version checks, just
		// before it prints the handshake line.
		tlsProvider = func() (*tls.Config, error) { return autoMTLS(clientCert, maxVersion), nil }
	}

	plugin.Serve(&plugin.ServeConfig{
		HandshakeConfig: plugin.HandshakeConfig{
			MagicCookieKey:   envOr("PROBE_COOKIE_KEY", "BASIC_PLUGIN"),
			MagicCookieValue: envOr("PROBE_COOKIE_VALUE", "hello"),
		},
		VersionedPlugins: versions,
		GRPCServer:       plugin.DefaultGRPCServer,
		TLSProvider:      tlsProvider,
	})
}
