"""The one exception type of the testcluster package."""


class ClusterError(RuntimeError):
    """A step of building, starting or stopping the local control plane failed.

    The message names the step and where its log is; it never contains tokens.
    """
