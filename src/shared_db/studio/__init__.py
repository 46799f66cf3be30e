"""``shared-db studio``: a local web page to browse every table and make the changes the
repositories allow (the guide's Prisma Studio, with every edit going through the domain rules).

Imported only when the command runs: the command line starts without Starlette or uvicorn.
"""
