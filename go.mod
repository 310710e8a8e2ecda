module github.com/secretbroker/secretbroker

go 1.26.8

require (
	github.com/joho/godotenv v1.5.1
	go.yaml.in/yaml/v3 v3.0.6
)
