"""Operations: structured logs, telemetry to Azure Monitor, and the readiness check behind /readyz."""
