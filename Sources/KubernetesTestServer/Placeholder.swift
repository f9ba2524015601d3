// This module is being written.
enum ModulePlaceholder {}
