"""What more than one feature of the edge needs: the wire, request models' base, pagination, the JSON body
reader, entity-id query parameters, filter shortcuts, parsed values and the scope keys."""
