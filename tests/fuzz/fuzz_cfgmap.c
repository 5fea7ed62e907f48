/* placeholder: helper writes this */
