"""Process-shared, content-addressed cache of inner AICPU runtime SOs."""
