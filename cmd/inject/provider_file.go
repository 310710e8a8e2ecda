package main

import (
	"context"

	"github.com/go-viper/mapstructure/v2"

	"github.com/secretbroker/secretbroker/providers"
	"github.com/secretbroker/secretbroker/providers/file"
)

func init() {
	providers.Register(providers.Registration{Scheme: "file", Block: "file", New: func(_ context.Context, env providers.Env) (providers.Provider, error) {
		var cfg file.Config
		if err := mapstructure.Decode(env.Config, &cfg); err != nil {
			return nil, err
		}
		return file.New(cfg, env.User)
	}})
}
