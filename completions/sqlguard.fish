complete --keep-order --exclusive --command sqlguard --arguments "(COMPLETE=fish sqlguard -- (commandline --current-process --tokenize --cut-at-cursor) (commandline --current-token))"
