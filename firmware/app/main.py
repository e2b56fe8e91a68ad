"""Board entry point: run the node application."""

import node

node.main()
