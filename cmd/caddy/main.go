// Command caddy is Caddy with its standard modules and flowgate built in.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/flowgate/flowgate/caddymodule"
)

func main() {
	caddycmd.Main()
}
