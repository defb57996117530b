"""Predictor runtimes: how a rendered ServingTemplate becomes something that answers HTTP.

`process` (default) runs the container's entrypoint as a local process, `shared` runs one such
process per distinct model for all its deployments (scale benches with real serving), `podman`
runs the real image, `noop` starts nothing (for scale tests). All share the `Runtime`/`Predictor`
shapes in `base`, so the deployment lifecycle does not care which one runs.
"""
