# Writes the C code between the README's "embedding-example:begin" and ":end" markers (a fenced
# ```c block) to OUT. Fails loudly when the markers are missing, so the test cannot silently
# compile nothing.
file(READ "${README}" text)
string(FIND "${text}" "<!-- embedding-example:begin -->" begin)
string(FIND "${text}" "<!-- embedding-example:end -->" end)
if(begin EQUAL -1 OR end EQUAL -1 OR end LESS begin)
  message(FATAL_ERROR "README.md has no embedding example between the markers")
endif()
string(SUBSTRING "${text}" ${begin} ${end}-${begin} block)
string(FIND "${block}" "```c\n" code_begin)
string(FIND "${block}" "\n```" code_end REVERSE)
if(code_begin EQUAL -1 OR code_end EQUAL -1)
  message(FATAL_ERROR "README.md embedding example is not a ```c block")
endif()
math(EXPR code_begin "${code_begin} + 5")
math(EXPR code_len "${code_end} - ${code_begin} + 1")
string(SUBSTRING "${block}" ${code_begin} ${code_len} code)
file(WRITE "${OUT}" "${code}")
