"""What runs on a customer's real drops: the landing contract, manifest checks, readers, validator and
raw-zone loader, framework-free. The simulated company that makes demo and test drops is ``simulator``."""
