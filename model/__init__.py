"""Pure modelling code: text preparation, features, the two-head classifier, persistence."""
