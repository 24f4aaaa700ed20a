#!/usr/bin/env bash
# Runs PostgreSQL in the current cluster (namespace database, Service postgres) for the prod tests; prints its URL.
source "$(dirname "$0")/lib.sh"
kubectl create namespace database --dry-run=client -o yaml | kubectl apply -f - >&2
kubectl apply --namespace database -f - >&2 <<YAML
apiVersion: apps/v1
kind: Deployment
metadata:
  name: postgres
spec:
  replicas: 1
  selector:
    matchLabels: {app: postgres}
  template:
    metadata:
      labels: {app: postgres}
    spec:
      containers:
        - name: postgres
          image: $KIND_POSTGRES_IMAGE
          env:
            - {name: POSTGRES_USER, value: tasks}
            - {name: POSTGRES_PASSWORD, value: tasks}
            - {name: POSTGRES_DB, value: tasks}
          ports:
            - containerPort: 5432
          readinessProbe:
            exec:
              command: [pg_isready, -U, tasks, -d, tasks]
            periodSeconds: 2
---
apiVersion: v1
kind: Service
metadata:
  name: postgres
spec:
  selector: {app: postgres}
  ports:
    - port: 5432
YAML
kubectl rollout status --namespace database deployment/postgres --timeout 5m >&2
printf '%s\n' "postgresql://tasks:tasks@postgres.database.svc:5432/tasks"
