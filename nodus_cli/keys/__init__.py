"""``nodus keys``: a keyring of hybrid post-quantum keys, the key log, and age files.

Library only (no printing). Heavy imports (cryptography) happen inside functions.
"""
