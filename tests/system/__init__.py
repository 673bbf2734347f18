"""System tests: subprocess servers, `make run`, fresh processes, deploy.sh against gcloud."""
