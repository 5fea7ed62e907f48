/* A shared object that is not a jiwa plugin at all. */
int not_a_plugin(void);
int not_a_plugin(void) { return 42; }
