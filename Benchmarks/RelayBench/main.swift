print("liverelay-bench: being written")
