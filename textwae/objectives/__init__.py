"""What training minimises besides reconstruction: divergences, priors and regularisers."""
