"""The authors' release files, written with synthetic weights (../shared/reference), one module per network.

Each module writes what its authors publish (containers, key prefixes, extra networks) so tests load it
through the app's own loader: the reference tests (``test_<model>_reference.py``), the shared contract
(``test_model_contract.py``) and the weight-source tests all use the same writers. The mmagic family
(DeepFill v1/v2, GLCIC, PConv) is in :mod:`tests.mmagic_release`.
"""
