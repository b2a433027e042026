"""Runtime: consume RuntimeBinaries and launch kernels on a (simulated) device."""
