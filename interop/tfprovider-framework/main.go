// Command terraform-provider-fwdemo is a small Terraform provider written
// with terraform-plugin-framework (protocol 6). goplug's Rust host test
// (goplug-terraform/tests/host_go_providers.rs) drives it through every
// provider RPC and checks the values it computes, so each computed value
// is a pure function of the configuration:
//
//   - provider config: prefix (optional string);
//   - resource fwdemo_item (schema version 1): name (required, non-empty,
//     a change forces replacement), id = prefix + name, upper = name in
//     upper case, length = the name's length in bytes; version 0 stored
//     the name as "title", which UpgradeResourceState renames;
//   - data source fwdemo_echo: input (required), output = prefix + input
//     reversed.
package main

import (
	"context"
	"flag"
	"log"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"
)

func main() {
	debug := flag.Bool("debug", false, "serve in debug mode and print TF_REATTACH_PROVIDERS")
	flag.Parse()
	err := providerserver.Serve(context.Background(), newProvider, providerserver.ServeOpts{
		Address:         "registry.terraform.io/goplug/fwdemo",
		Debug:           *debug,
		ProtocolVersion: 6,
	})
	if err != nil {
		log.Fatal(err)
	}
}
